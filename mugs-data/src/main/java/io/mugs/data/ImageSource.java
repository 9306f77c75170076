package io.mugs.data;

import java.io.IOException;
import java.util.List;

/**
 * A random-access collection of images with optional class labels.
 *
 * <p>Implementations: {@link IdxImageSource} (MNIST / Fashion-MNIST idx files, raw or gzip) and
 * {@link ImageFolderSource} (JPEG, PNG, WebP, BMP, TIFF and GIF files under a folder, class = first-level
 * sub-folder, decoded as PIL does).
 * {@link #load} may fail for one unreadable item; {@link MultiCropLoader} skips such items, counts them and reports
 * them once per epoch. Items too small for the crops are found before the first epoch through
 * {@link #withMinSide} when the source knows its sizes without decoding (an image folder does, from the headers).
 *
 * <pre>{@code
 * ImageSource data = ImageFolderSource.scan(Path.of("/data/train")).withMinSide(96);
 * Image first = data.load(0);   // [C, H, W], samples 0..255
 * }</pre>
 */
public interface ImageSource {

    /** Number of items. */
    int size();

    /**
     * Decodes item {@code index}.
     *
     * @throws IOException when this one item cannot be read or decoded (the message names it)
     */
    Image load(int index) throws IOException;

    /** Class index of item {@code index}, or -1 when the source has no labels. */
    int label(int index);

    /** The label of every item, in order (-1 where unlabelled). */
    default int[] labels() {
        int[] l = new int[size()];
        for (int i = 0; i < l.length; i++) {
            l[i] = label(i);
        }
        return l;
    }

    /** Class names by class index (empty when unlabelled). */
    List<String> classNames();

    /**
     * This source without the items whose shorter side is below {@code minSide} px, or an
     * {@link IllegalArgumentException} naming such an item, as the source's policy says. The default returns this
     * source unchanged: sources that only learn sizes by decoding leave the check to the loader, per image.
     */
    default ImageSource withMinSide(int minSide) {
        return this;
    }

    /** Where item {@code index} comes from, for error messages (a path, or a file and record number). */
    String describe(int index);
}
