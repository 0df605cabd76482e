"""Customer segmentation: KMeans on log-scaled RFM, k by silhouette, segments named in words.

Pure scikit-learn/pandas: no Django import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from ml.features import RFM_OUTPUT, require_columns, single_threaded

# Archetypes as (recency, frequency, monetary) scores in [0, 1], 1 = best: most recent,
# most orders, most spend. Scores are population percentiles, so "high" means relative to
# this shop's customers, not an absolute threshold.
ARCHETYPES: dict[str, tuple[float, float, float]] = {
    "champions": (0.9, 0.9, 0.9),
    "loyal": (0.65, 0.75, 0.6),
    "big spenders": (0.55, 0.45, 0.9),
    "promising": (0.7, 0.5, 0.5),
    "new": (0.85, 0.2, 0.3),
    "needs attention": (0.5, 0.5, 0.5),
    "at risk": (0.2, 0.75, 0.7),
    "about to sleep": (0.35, 0.3, 0.3),
    "hibernating": (0.1, 0.15, 0.15),
}
SINGLE_SEGMENT = "all customers"
N_INIT = 4
SILHOUETTE_MEMORY_MB = 128


@dataclass(frozen=True)
class SegmentationResult:
    """Outcome of ``segment_customers``.

    ``labels``: customer_id -> segment name. ``k``: number of segments (0 for no customers).
    ``silhouette``: score of the chosen k on the sample, None when it is undefined (k < 2).
    ``profiles``: one row per segment (columns ``name, size, recency_days, frequency,
    monetary`` -- the last three are segment means -- plus the 0..1 ``*_score`` percentiles
    the names come from), largest segment first. ``silhouette_by_k``: every k tried.
    """

    labels: pd.Series
    k: int
    silhouette: float | None
    profiles: pd.DataFrame
    silhouette_by_k: dict[int, float] = field(default_factory=dict)


def segment_customers(
    rfm: pd.DataFrame,
    k_range: range = range(3, 9),
    sample_size: int = 10_000,
    random_state: int = 0,
) -> SegmentationResult:
    """Cluster customers on ``rfm`` (from ``ml.features.rfm_table``) and name the clusters.

    Features are log1p(recency_days), log1p(frequency), log1p(monetary), standardised.
    KMeans runs for each k in ``k_range`` that the data can support (2 <= k < distinct
    customers); the k with the best silhouette on a fixed random sample of at most
    ``sample_size`` customers wins (silhouette is quadratic in the sample size). When no k
    in the range fits, k = distinct customers - 1. With fewer than 3 distinct customers
    there is nothing to compare, so every customer goes to one segment named
    ``"all customers"`` (k = 1, silhouette None); no customers give k = 0.
    Deterministic for a given ``random_state``.
    """
    require_columns(rfm, RFM_OUTPUT, what="rfm")
    if rfm.empty:
        return _single_segment(rfm, k=0)
    features = _scaled_features(rfm)
    candidates = _feasible_ks(k_range, features)
    if not candidates:
        return _single_segment(rfm, k=1)
    sample = _sample_rows(len(features), sample_size, random_state)
    best_labels, best_k, best_score = None, 0, -np.inf
    scores: dict[int, float] = {}
    with single_threaded():
        for k in candidates:
            labels = _kmeans_labels(features, k, random_state)
            score = _silhouette(features, labels, sample, random_state)
            scores[k] = score
            if score > best_score:
                best_labels, best_k, best_score = labels, k, score
    names = _name_clusters(rfm, best_labels, best_k)
    segment = pd.Series(names[best_labels], index=rfm.index, name="segment")
    return SegmentationResult(
        labels=segment,
        k=best_k,
        silhouette=float(best_score),
        profiles=_profiles(rfm, segment),
        silhouette_by_k=scores,
    )


def _scaled_features(rfm: pd.DataFrame) -> np.ndarray:
    # log1p tames the heavy right tails (a few customers with hundreds of orders) that would
    # otherwise own whole clusters; clipping at 0 guards against refunds making spend negative.
    raw = rfm[list(RFM_OUTPUT)].to_numpy(dtype="float64")
    logged = np.log1p(np.clip(raw, 0.0, None))
    return StandardScaler().fit_transform(logged)


def _feasible_ks(k_range: range, features: np.ndarray) -> list[int]:
    # KMeans cannot make more clusters than distinct points, and silhouette needs
    # 2 <= k <= n - 1, so both bounds come from the distinct rows.
    distinct = len(np.unique(features, axis=0))
    feasible = [k for k in k_range if 2 <= k < distinct]
    if not feasible and distinct >= 3:
        # Too few customers for the range asked: the most segments the data still supports.
        feasible = [distinct - 1]
    return feasible


def _sample_rows(n: int, sample_size: int, random_state: int) -> np.ndarray:
    if n <= sample_size:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=sample_size, replace=False))


def _kmeans_labels(features: np.ndarray, k: int, random_state: int) -> np.ndarray:
    model = KMeans(n_clusters=k, n_init=N_INIT, random_state=random_state)
    return model.fit_predict(features)


def _silhouette(
    features: np.ndarray, labels: np.ndarray, sample: np.ndarray, random_state: int
) -> float:
    sampled = labels[sample]
    if len(np.unique(sampled)) < 2:
        return -1.0
    # sklearn's default 1 GB distance chunks would dominate the process's peak memory.
    with config_context(working_memory=SILHOUETTE_MEMORY_MB):
        return float(silhouette_score(features[sample], sampled, random_state=random_state))


def _rfm_scores(rfm: pd.DataFrame, labels: np.ndarray, k: int) -> np.ndarray:
    """Per cluster, mean population percentile of recency (inverted), frequency, monetary."""
    percentiles = np.column_stack(
        [
            1.0 - rfm["recency_days"].rank(pct=True).to_numpy(),
            rfm["frequency"].rank(pct=True).to_numpy(),
            rfm["monetary"].rank(pct=True).to_numpy(),
        ]
    )
    counts = np.bincount(labels, minlength=k).astype("float64")
    sums = np.column_stack([np.bincount(labels, percentiles[:, j], minlength=k) for j in range(3)])
    return sums / counts[:, None]


def _name_clusters(rfm: pd.DataFrame, labels: np.ndarray, k: int) -> np.ndarray:
    """One distinct archetype name per cluster, matched to minimise total profile distance.

    A global assignment (not nearest-archetype per cluster) is what keeps names unique: two
    clusters that both look "loyal" get the best and the next-best fitting names.
    """
    scores = _rfm_scores(rfm, labels, k)
    archetype_names = list(ARCHETYPES)
    targets = np.array([ARCHETYPES[name] for name in archetype_names])
    cost = ((scores[:, None, :] - targets[None, :, :]) ** 2).sum(axis=2)
    cluster_idx, archetype_idx = linear_sum_assignment(cost)
    names = np.empty(k, dtype=object)
    names[cluster_idx] = [archetype_names[j] for j in archetype_idx]
    # More clusters than archetypes (only with a k_range beyond 9): number the extras after
    # their nearest archetype so every name stays distinct.
    for cluster in np.flatnonzero(pd.isna(names)):
        nearest = archetype_names[int(np.argmin(cost[cluster]))]
        names[cluster] = f"{nearest} ({cluster + 1})"
    return names


def _profiles(rfm: pd.DataFrame, segment: pd.Series) -> pd.DataFrame:
    frame = rfm[list(RFM_OUTPUT)].astype("float64").assign(segment=segment.to_numpy())
    frame["recency_score"] = 1.0 - rfm["recency_days"].rank(pct=True).to_numpy()
    frame["frequency_score"] = rfm["frequency"].rank(pct=True).to_numpy()
    frame["monetary_score"] = rfm["monetary"].rank(pct=True).to_numpy()
    grouped = frame.groupby("segment", sort=True)
    profiles = grouped.mean()
    profiles.insert(0, "size", grouped.size().astype("int64"))
    profiles = profiles.rename_axis("name").reset_index()
    return profiles.sort_values(["size", "name"], ascending=[False, True], ignore_index=True)


def _single_segment(rfm: pd.DataFrame, k: int) -> SegmentationResult:
    segment = pd.Series(SINGLE_SEGMENT, index=rfm.index, name="segment", dtype="object")
    return SegmentationResult(
        labels=segment, k=k, silhouette=None, profiles=_profiles(rfm, segment)
    )
