package io.mugs.core;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;
import org.slf4j.LoggerFactory;

/** The formatted log messages of this JVM while open (Logback, the tests' binding). */
final class LogCapture implements AutoCloseable {

    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();
    private final Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);

    LogCapture() {
        appender.start();
        root.addAppender(appender);
    }

    List<String> messages() {
        synchronized (appender.list) {
            return appender.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    /** The first message containing {@code part}, or an assertion error listing them all. */
    String find(String part) {
        return messages().stream().filter(m -> m.contains(part)).findFirst()
                .orElseThrow(() -> new AssertionError("no log message contains '" + part + "':\n"
                        + String.join("\n", messages())));
    }

    @Override
    public void close() {
        root.detachAppender(appender);
    }
}
