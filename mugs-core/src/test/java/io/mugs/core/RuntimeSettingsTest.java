package io.mugs.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class RuntimeSettingsTest {

    @Test
    void keepsPropertiesGivenOnTheCommandLine() {
        // Surefire starts this JVM with -Dorg.bytedeco.javacpp.maxbytes=4G (parent pom): apply() must not replace it.
        String given = System.getProperty(RuntimeSettings.MAX_BYTES_PROPERTY);
        assertEquals("4G", given);
        List<String> warnings = RuntimeSettings.apply();
        assertEquals(given, System.getProperty(RuntimeSettings.MAX_BYTES_PROPERTY));
        assertTrue(warnings.isEmpty(), warnings.toString());
    }

    @Test
    void warnsWhenJavaCppWasLoadedFirst() throws Exception {
        Class.forName("org.bytedeco.javacpp.Pointer", true, getClass().getClassLoader());   // bounds now fixed: 4G
        String given = System.clearProperty(RuntimeSettings.MAX_BYTES_PROPERTY);
        try {
            List<String> warnings = RuntimeSettings.apply();
            assertEquals(RuntimeSettings.MAX_BYTES, System.getProperty(RuntimeSettings.MAX_BYTES_PROPERTY));
            assertEquals(List.of("JavaCPP was loaded before RuntimeSettings.apply(), so its native-memory bounds stay "
                    + "org.bytedeco.javacpp.maxbytes 4096 MB instead of 8G: call RuntimeSettings.apply() first in "
                    + "main, or pass -Dorg.bytedeco.javacpp.maxbytes=8G to the JVM"), warnings);
        } finally {
            System.setProperty(RuntimeSettings.MAX_BYTES_PROPERTY, given);
        }
    }

    @Test
    void launcherOptionsNameTheSameValues() {
        assertEquals(List.of("-Xmx6g", "-Dorg.bytedeco.javacpp.maxphysicalbytes=12G",
                "-Dorg.bytedeco.javacpp.maxbytes=8G", "-XX:+UseSerialGC", "-Xmn32m", "--add-modules",
                "jdk.incubator.vector"),
                RuntimeSettings.launcherJvmOptions());
    }
}
