import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml.segmentation import SINGLE_SEGMENT, segment_customers

# (recency_days, frequency, monetary) centres of well separated customer groups.
PLANTED = {
    "champions": (4, 30, 5000.0),
    "new": (5, 1, 60.0),
    "at risk": (300, 20, 3000.0),
    "hibernating": (420, 1, 25.0),
}


def planted_rfm(per_group: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for group, (recency, frequency, monetary) in enumerate(PLANTED.values()):
        noise = rng.lognormal(0.0, 0.12, size=(per_group, 3))
        frames.append(
            pd.DataFrame(
                {
                    "recency_days": np.maximum(1, np.round(recency * noise[:, 0])),
                    "frequency": np.maximum(1, np.round(frequency * noise[:, 1])),
                    "monetary": monetary * noise[:, 2],
                }
            )
        )
        truth.append(np.full(per_group, group))
    rfm = pd.concat(frames, ignore_index=True)
    rfm.index = pd.Index(np.arange(1000, 1000 + len(rfm)), name="customer_id")
    return rfm, np.concatenate(truth)


def random_rfm(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "recency_days": rng.integers(1, 700, size=n),
            "frequency": np.ceil(rng.lognormal(1.0, 1.0, size=n)),
            "monetary": rng.lognormal(5.0, 1.2, size=n),
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )


def test_planted_clusters_are_recovered_with_the_right_k():
    rfm, truth = planted_rfm()

    result = segment_customers(rfm)

    assert result.k == 4
    assert adjusted_rand_score(truth, result.labels.to_numpy()) > 0.95
    assert result.silhouette is not None
    assert result.silhouette > 0.5


def test_planted_clusters_get_the_names_their_profiles_describe():
    rfm, truth = planted_rfm()

    result = segment_customers(rfm)

    for group, expected in enumerate(PLANTED):
        names = result.labels[truth == group]
        assert names.mode().iloc[0] == expected


def test_segment_names_are_unique_and_profiles_cover_every_customer():
    for seed, k_range in [(1, range(3, 9)), (2, range(8, 9)), (3, range(10, 13))]:
        rfm = random_rfm(1500, seed)

        result = segment_customers(rfm, k_range=k_range)

        assert result.profiles["name"].is_unique
        assert len(result.profiles) == result.k
        assert result.profiles["size"].sum() == len(rfm)
        assert set(result.labels.unique()) == set(result.profiles["name"])
        assert list(result.profiles.columns[:5]) == [
            "name",
            "size",
            "recency_days",
            "frequency",
            "monetary",
        ]


def test_segmentation_is_deterministic_for_a_random_state():
    rfm = random_rfm(3000, seed=4)

    first = segment_customers(rfm, sample_size=500, random_state=7)
    second = segment_customers(rfm, sample_size=500, random_state=7)

    pd.testing.assert_series_equal(first.labels, second.labels)
    pd.testing.assert_frame_equal(first.profiles, second.profiles)
    assert first.silhouette == second.silhouette


def test_silhouette_is_computed_on_a_sample_when_customers_exceed_it():
    rfm, truth = planted_rfm(per_group=500)

    result = segment_customers(rfm, sample_size=200)

    assert result.k == 4
    assert adjusted_rand_score(truth, result.labels.to_numpy()) > 0.95


def test_labels_are_indexed_by_customer_id():
    rfm, _ = planted_rfm(per_group=50)

    result = segment_customers(rfm)

    assert result.labels.index.equals(rfm.index)


@pytest.mark.parametrize("n", [1, 2])
def test_fewer_than_three_customers_form_a_single_segment(n):
    rfm = random_rfm(n, seed=0)

    result = segment_customers(rfm)

    assert result.k == 1
    assert result.silhouette is None
    assert (result.labels == SINGLE_SEGMENT).all()
    assert result.profiles["size"].tolist() == [n]


def test_identical_customers_form_a_single_segment():
    rfm = pd.DataFrame(
        {"recency_days": [5] * 6, "frequency": [2] * 6, "monetary": [10.0] * 6},
        index=pd.Index(range(6), name="customer_id"),
    )

    result = segment_customers(rfm)

    assert result.k == 1
    assert (result.labels == SINGLE_SEGMENT).all()


@pytest.mark.parametrize(("n", "largest_k"), [(3, 2), (4, 3), (5, 4)])
def test_few_customers_limit_k_instead_of_crashing(n, largest_k):
    rfm = random_rfm(n, seed=3)

    result = segment_customers(rfm)

    assert 2 <= result.k <= largest_k
    assert result.profiles["name"].is_unique
    assert len(result.labels) == n


def test_no_customers_give_an_empty_result():
    rfm = random_rfm(0, seed=0)

    result = segment_customers(rfm)

    assert result.k == 0
    assert result.labels.empty
    assert result.profiles.empty


def test_missing_rfm_column_is_named_in_the_error():
    rfm = random_rfm(10, seed=0).drop(columns=["monetary"])

    with pytest.raises(ValueError, match="monetary"):
        segment_customers(rfm)
