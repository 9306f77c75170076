package io.mugs.data;

/**
 * The views of one image, each a normalised channel-major float array.
 *
 * @param teacher  the 2 teacher global views
 * @param student  the 2 student global views
 * @param locals   the local views
 * @param weakFlag true when the student globals are weak (such images feed the student neighbour memory)
 */
public record MultiCropSample(float[][] teacher, float[][] student, float[][] locals, boolean weakFlag) {
}
