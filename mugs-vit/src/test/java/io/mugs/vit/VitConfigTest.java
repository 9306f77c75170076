package io.mugs.vit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

class VitConfigTest {

    /** Counts the elements of every variable a freshly built backbone allocates. */
    private static long allocatedParameters(VitConfig cfg) {
        SameDiff sd = SameDiff.create();
        VisionTransformer vit = new VisionTransformer(sd, "", cfg, DataType.FLOAT, 1);
        return vit.parameterNames().stream().mapToLong(n -> sd.getArrForVarName(n).length()).sum();
    }

    @Test
    void jsonWithoutAStemIsReadByAStrictReaderAsNoStem() throws Exception {
        VitConfig plain = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(16).depth(1)
                .numHeads(2).build();
        assertTrue(!plain.toJson().contains("stemChannels"), plain.toJson());
        var strict = new com.fasterxml.jackson.databind.ObjectMapper().enable(
                com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
        assertEquals(plain, strict.readValue(plain.toJson(), VitConfig.class));
        VitConfig stem = plain.toBuilder().stemChannels(8).build();
        assertEquals(stem, strict.readValue(stem.toJson(), VitConfig.class));
        var missing = assertThrows(com.fasterxml.jackson.databind.exc.MismatchedInputException.class,
                () -> strict.readValue(plain.toJson().replace("\"depth\":1,", ""), VitConfig.class));
        assertTrue(missing.getMessage().contains("null"), missing.getMessage());
    }

    @Test
    void officialParameterCountsWithoutHead() {
        // ViT-S/16 and ViT-B/16 as published (timm / DINO, num_classes = 0).
        assertEquals(21_665_664L, VitConfig.small(16).parameterCount());
        assertEquals(85_798_656L, VitConfig.base(16).parameterCount());
        assertEquals(5_524_416L, VitConfig.tiny(16).parameterCount());
        assertEquals(303_301_632L, VitConfig.large(16).parameterCount());
        assertEquals(21_665_664L, allocatedParameters(VitConfig.small(16)));
        assertEquals(85_798_656L, allocatedParameters(VitConfig.base(16)));
    }

    @Test
    void customSizeCountMatchesAllocation() {
        VitConfig fm = VitConfig.builder().imageSize(28).inChannels(1).patchSize(7).embedDim(48).depth(2)
                .numHeads(3).qkvBias(false).build();
        assertEquals(fm.parameterCount(), allocatedParameters(fm));
        assertEquals(16, fm.numPatches());
    }

    @Test
    void presetsMatchTheOfficialTable() {
        VitConfig l = VitConfig.preset("vit_large", 16);
        assertEquals(1024, l.embedDim());
        assertEquals(24, l.depth());
        assertEquals(16, l.numHeads());
        assertEquals(1e-6, l.layerNormEps());
        assertEquals(4096, l.mlpHidden());
        assertTrue(l.qkvBias());
    }

    @Test
    void jsonRoundTrip() {
        VitConfig c = VitConfig.small(8).toBuilder().dropPathRate(0.1).inChannels(1).imageSize(64).build();
        assertEquals(c, VitConfig.fromJson(c.toJson()));
    }

    @Test
    void dropPathIsLinearOverDepth() {
        VitConfig c = VitConfig.small(16).toBuilder().dropPathRate(0.1).build();
        assertEquals(0.0, c.blockDropPathRate(0));
        assertEquals(0.1, c.blockDropPathRate(11), 1e-15);
        assertEquals(0.1 * 5 / 11, c.blockDropPathRate(5), 1e-15);
    }

    @Test
    void invalidConfigsSayWhatToChange() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> VitConfig.builder().embedDim(100).numHeads(3).build());
        assertTrue(e.getMessage().contains("embedDim 100 must be divisible by numHeads 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> VitConfig.builder().imageSize(30).patchSize(4).build());
        assertTrue(e.getMessage().contains("imageSize 30 must be a positive multiple of patchSize 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> VitConfig.preset("huge", 14));
        assertTrue(e.getMessage().contains("vit_small"), e.getMessage());
    }

    @Test
    void forwardFlopsOfVitSmall() {
        // Per block at T = 197, D = 384: 24 T D^2 + 4 T^2 D FLOPs; patch embedding 2 * 196 * 768 * 384.
        double t = 197;
        double d = 384;
        double expected = 2.0 * 196 * 768 * 384 + 12 * (24 * t * d * d + 4 * t * t * d);
        assertEquals(expected, VitConfig.small(16).forwardFlops(224), 1.0);
    }
}
