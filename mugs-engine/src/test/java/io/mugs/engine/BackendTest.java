package io.mugs.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BackendTest {

    @Test
    void gpusWithMachineCodeOfTheSameMajorVersionAreSupported() {
        assertTrue(Backend.supports(8, 9), "Ada (RTX 40xx, L4) runs the sm_86 code");
        assertTrue(Backend.supports(8, 6));
        assertTrue(Backend.supports(8, 7), "Orin runs the sm_86 code");
        assertTrue(Backend.supports(8, 0));
        assertTrue(Backend.supports(7, 5));
        assertTrue(Backend.supports(7, 2), "Xavier runs the sm_70 code");
        assertTrue(Backend.supports(6, 1));
        assertTrue(Backend.supports(5, 3), "sm_52 code runs on 5.3");
        assertTrue(Backend.supports(3, 7));
    }

    @Test
    void gpusWithoutCodeOfTheirMajorVersionAreRefused() {
        assertFalse(Backend.supports(9, 0), "Hopper: no sm_90 code and no PTX");
        assertFalse(Backend.supports(10, 0), "Blackwell");
        assertFalse(Backend.supports(12, 0));
        assertFalse(Backend.supports(3, 5), "older than the oldest code, 3.7");
        assertFalse(Backend.supports(2, 1));
    }

    @Test
    void theRefusalIsOneLineThatSaysWhatToDo() {
        assertEquals("GPU 'NVIDIA H100' has compute capability 9.0, and ND4J 1.0.0-M2.1 (CUDA 11.6) has no code for it "
                + "(highest 8.6, which also serves 8.7 and 8.9 Ada; no PTX for 9.0 Hopper or newer): use a GPU of "
                + "compute capability 3.7 to 8.9, or drop -Pcuda / nd4j-cuda-11.6 to run on CPU.",
                Backend.unsupportedMessage("NVIDIA H100", 9, 0));
        assertEquals("GPU 'Tesla K20' has compute capability 3.5, below the oldest code in ND4J 1.0.0-M2.1 "
                + "(CUDA 11.6), 3.7: use a GPU of compute capability 3.7 to 8.9, or drop "
                + "-Pcuda / nd4j-cuda-11.6 to run on CPU.", Backend.unsupportedMessage("Tesla K20", 3, 5));
    }
}
