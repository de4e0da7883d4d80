"""Area under the ROC curve of per-pixel class probabilities, in bounded
memory (``val.py --auc_roc``, ``test_config.auc_roc``).

PaddleSeg keeps every pixel's probabilities of the whole validation set and
calls scikit-learn's ``roc_auc_score(multi_class='ovr')``: for Cityscapes that
is 500 x 19 x 1024 x 2048 floats, 80 GB. Here each class keeps two histograms
of its probability (over the pixels of that class and over the others) in
``bins`` equal bins. The AUC of class ``c`` is then the Mann-Whitney
statistic of the binned scores: the chance that a pixel of class ``c`` scores
higher than one of another class, pairs in one bin counting one half. It is
exact when no two pixels of different classes share a bin, and otherwise
within the fraction of such pairs (at most ``1 / bins`` of the probability
range apart). The result is the mean over the classes present in the labels
(and absent from some pixel), as scikit-learn's one-vs-rest macro average.
Pixels labelled ``ignore_index`` are left out (PaddleSeg refuses them).
"""

import numpy as np

__all__ = ['RocAccumulator', 'DEFAULT_BINS']

DEFAULT_BINS = 1 << 14


class RocAccumulator:
    """Per-class score histograms of positives and negatives.

    Args:
        num_classes (int): Number of classes.
        ignore_index (int): Label value left out.
        bins (int): Histogram bins over [0, 1].
    """

    def __init__(self, num_classes, ignore_index=255, bins=DEFAULT_BINS):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.bins = int(bins)
        # [class, 0 = negatives / 1 = positives, bin]
        self.hist = np.zeros((self.num_classes, 2, self.bins), dtype=np.int64)

    def add(self, probs, label):
        """Count one image: ``probs`` ``(C, H, W)`` probabilities and
        ``label`` ``(H, W)`` class ids."""
        probs = np.asarray(probs, dtype=np.float64)
        label = np.asarray(label)
        if probs.shape[0] != self.num_classes or \
                probs.shape[1:] != label.shape:
            raise ValueError(
                'probabilities of shape {} do not fit {} classes and a label '
                'of shape {}'.format(probs.shape, self.num_classes,
                                     label.shape))
        valid = label != self.ignore_index
        label = label[valid]
        for c in range(self.num_classes):
            b = np.clip((probs[c][valid] * self.bins).astype(np.int64), 0,
                        self.bins - 1)
            positive = (label == c).astype(np.int64)
            self.hist[c] += np.bincount(positive * self.bins + b,
                                        minlength=2 * self.bins).reshape(
                                            2, self.bins)

    def class_auc(self):
        """AUC per class (NaN for a class without positives or negatives)."""
        out = np.full(self.num_classes, np.nan)
        for c in range(self.num_classes):
            neg, pos = self.hist[c].astype(np.float64)
            n_neg, n_pos = neg.sum(), pos.sum()
            if n_neg == 0 or n_pos == 0:
                continue
            below = np.cumsum(neg) - neg  # negatives in lower bins
            out[c] = float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))
        return out

    def auc(self):
        """The mean AUC over the classes that have one (NaN if none)."""
        values = self.class_auc()
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float('nan')
