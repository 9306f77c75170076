package io.mugs.data;

import java.nio.file.Path;

/**
 * File names as they appear in log lines and messages: quoted, with control characters escaped (one line each), so a
 * name can never split or forge a log line. Used by every module that names a file in a message.
 *
 * <pre>{@code
 * LOG.warn("skipped {}", LogText.quoted(path));   // 'runs/a\nb'
 * }</pre>
 */
public final class LogText {

    private LogText() {
    }

    /** {@code 'runs/a\nb'} for a path holding a newline: a name can never split a log line. */
    public static String quoted(Path p) {
        return quoted(String.valueOf(p));
    }

    /** {@code s} quoted, control characters escaped. */
    public static String quoted(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('\'');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\\' -> b.append("\\\\");
                case '\'' -> b.append("\\'");
                default -> {
                    if (Character.isISOControl(c)) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('\'').toString();
    }
}
