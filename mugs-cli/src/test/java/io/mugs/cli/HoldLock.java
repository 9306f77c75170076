package io.mugs.cli;

import io.mugs.core.RunLock;
import java.nio.file.Path;

/** A second process for {@link CliReliabilityTest}: holds the run folder {@code args[0]} until killed. */
public final class HoldLock {

    private HoldLock() {
    }

    public static void main(String[] args) throws Exception {
        RunLock lock = RunLock.acquire(Path.of(args[0]));
        System.out.println("locked " + ProcessHandle.current().pid());
        System.out.flush();
        Thread.sleep(600_000);
        lock.close();
    }
}
