package io.mugs.data;

/**
 * What {@link ImageFolderSource} does with a file found unusable when the folder is scanned (an unreadable or
 * damaged header, an unsupported layout, or a shorter side below the crops' minimum).
 *
 * <pre>{@code
 * ImageFolderSource.builder(root).minSide(96).onBadImage(BadImagePolicy.REFUSE).scan();
 * }</pre>
 */
public enum BadImagePolicy {
    /** Leave the file out, count it, and log the count with the first few names once (the default). */
    SKIP,
    /** Stop before training with an error naming the first such file and how many there are. */
    REFUSE
}
