package io.mugs.data;

import java.nio.file.Path;

/** File names as they appear in log lines and messages: quoted, with control characters escaped (one line each). */
final class LogText {

    private LogText() {
    }

    /** {@code 'runs/a\nb'} for a path holding a newline: a name can never split a log line. */
    static String quoted(Path p) {
        return quoted(String.valueOf(p));
    }

    static String quoted(String s) {
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
