"""The ITU-T G.107 E-model against the Recommendation's worked values."""

from __future__ import annotations

import math

import pytest

from softphone.rtp import emodel


def test_default_values_give_the_recommendations_ratings() -> None:
    # G.107 §7.7: "Using the default values [...] results in a very high quality with a
    # rating factor of R = 93.2"; Ro = 94.77 and Is = 1.41 with them
    assert emodel.basic_signal_to_noise() == pytest.approx(94.77, abs=0.005)
    assert emodel.simultaneous_impairment() == pytest.approx(1.41, abs=0.005)
    r = emodel.rating(delay_ms=0.0, ie=0.0, loss_pct=0.0)
    assert round(r, 1) == 93.2
    assert round(emodel.mos_from_r(r), 2) == 4.41


@pytest.mark.parametrize(
    "r, mos",
    # G.107 Annex B: the R -> MOS_CQE mapping (G.109 Table 1 lists the same limits, R 80 rounded up to 4.03)
    [(100, 4.5), (90, 4.34), (80, 4.02), (70, 3.60), (60, 3.10), (50, 2.58), (0, 1.0), (-5, 1.0), (120, 4.5)],
)
def test_mos_from_r(r: float, mos: float) -> None:
    assert emodel.mos_from_r(r) == pytest.approx(mos, abs=0.005)


def test_mos_never_drops_under_one() -> None:
    assert min(emodel.mos_from_r(r / 10) for r in range(0, 100)) == 1.0


def test_effective_equipment_impairment() -> None:
    # no loss: the codec's own Ie
    assert emodel.effective_equipment_impairment(11.0, 19.0, 0.0) == 11.0
    # G.711 with PLC at 2 % random loss: 95 * 2 / (2 + 25.1)
    assert emodel.effective_equipment_impairment(0.0, 25.1, 2.0) == pytest.approx(7.011, abs=0.001)
    # without PLC the same loss costs far more
    assert emodel.effective_equipment_impairment(0.0, 4.3, 2.0) == pytest.approx(30.16, abs=0.01)
    # bursty loss (BurstR > 1) hurts more than random loss
    assert emodel.effective_equipment_impairment(0.0, 25.1, 5.0, burst_r=2.0) > \
        emodel.effective_equipment_impairment(0.0, 25.1, 5.0)
    # everything lost: the scale's end
    assert emodel.effective_equipment_impairment(0.0, 25.1, 100.0) == pytest.approx(95 * 100 / 125.1)
    with pytest.raises(ValueError):
        emodel.effective_equipment_impairment(0.0, 0.0, 1.0)


def test_absolute_delay_impairment_idd() -> None:
    # Idd = 0 up to mT = 100 ms; at Ta = 200 ms X = 1 and
    # Idd = 25 ((1 + 1)^(1/6) - 3 (1 + 3^-6)^(1/6) + 2)
    idd_200 = 25 * (2 ** (1 / 6) - 3 * (1 + 3**-6) ** (1 / 6) + 2)
    base = emodel.delay_impairment(200.0) - idd_200
    assert idd_200 == pytest.approx(3.044, abs=0.001)
    assert 0 < base < emodel.delay_impairment(200.0)
    assert emodel.delay_impairment(0.0) == pytest.approx(0.15, abs=0.01)


def test_delay_and_loss_lower_the_rating() -> None:
    ratings = [emodel.rating(delay_ms=d) for d in (0, 50, 100, 150, 200, 300, 400)]
    assert ratings == sorted(ratings, reverse=True)
    # G.114: up to 150 ms one way most applications are not much affected (R stays near 90)
    assert emodel.rating(delay_ms=150) > 88
    assert emodel.rating(delay_ms=400) < 70
    losses = [emodel.rating(loss_pct=p) for p in (0, 1, 2, 5, 10, 20)]
    assert losses == sorted(losses, reverse=True)


def test_estimate_mos_for_a_call_leg() -> None:
    clean = emodel.estimate_mos("PCMU", loss_pct=0.0, rtt_ms=1.0, buffer_ms=40.0, ptime_ms=20.0)
    lossy = emodel.estimate_mos("pcmu", loss_pct=5.0, rtt_ms=1.0, buffer_ms=40.0, ptime_ms=20.0)
    slow = emodel.estimate_mos("PCMU", loss_pct=0.0, rtt_ms=500.0, buffer_ms=40.0, ptime_ms=20.0)
    assert clean is not None and lossy is not None and slow is not None
    assert 4.3 < clean <= 4.41
    # 5 % loss: Ie,eff = 95 * 5 / 30.1 = 15.8 -> R about 76 -> MOS about 3.85
    assert lossy == pytest.approx(emodel.mos_from_r(emodel.rating(delay_ms=60.5, loss_pct=5.0)))
    assert 3.7 < lossy < 4.0
    assert slow < clean
    assert emodel.estimate_mos("G729", loss_pct=0.0, rtt_ms=None, buffer_ms=40.0, ptime_ms=20.0) is None


def test_every_audio_codec_of_the_phone_has_an_entry() -> None:
    from softphone.codecs.registry import AUDIO_CODECS

    for codec in AUDIO_CODECS:
        if codec.name != "telephone-event":
            entry = emodel.codec_impairment(codec.name)
            assert entry is not None, codec.name
            assert entry.source and entry.bpl > 0 and not math.isnan(entry.ie)
