"""Listening-and-talking quality of a voice call from what the RTP statistics measure:
the ITU-T G.107 E-model (06/2015), narrowband, with its default values (G.107 Table 3)
for everything a softphone cannot know (loudness ratings, room noise, echo loss).

R = Ro - Is - Id - Ie,eff + A (G.107 §7.1). Ro and Is depend only on the defaults, so
they are computed once; the call changes Id (mouth-to-ear delay) and Ie,eff (codec and
packet loss). R maps to an estimated MOS (conversational quality, MOS-CQE) by Annex B.

Pure arithmetic: no I/O.
"""

from __future__ import annotations

import math

from softphone.frozen import dataclass


@dataclass(frozen=True)
class Defaults:
    """G.107 Table 3, "Default values and permitted ranges for the parameters"."""

    slr: float = 8.0  # send loudness rating, dB
    rlr: float = 2.0  # receive loudness rating, dB
    stmr: float = 15.0  # sidetone masking rating, dB
    lstr: float = 18.0  # listener sidetone rating, dB
    ds: float = 3.0  # D-value of the telephone, send side
    dr: float = 3.0  # D-value of the telephone, receive side
    telr: float = 65.0  # talker echo loudness rating, dB
    wepl: float = 110.0  # weighted echo path loss, dB
    qdu: float = 1.0  # quantizing distortion units
    nc: float = -70.0  # circuit noise referred to the 0 dBr point, dBm0p
    nfor: float = -64.0  # noise floor at the receive side, dBmp
    ps: float = 35.0  # room noise at the send side, dB(A)
    pr: float = 35.0  # room noise at the receive side, dB(A)
    advantage: float = 0.0  # A, the advantage factor
    mt: float = 100.0  # mT: the delay below which delay does not impair, ms
    st: float = 1.0  # sT: sensitivity to absolute delay


@dataclass(frozen=True)
class CodecImpairment:
    """Equipment impairment factor Ie and packet-loss robustness factor Bpl of a codec,
    its algorithmic delay (look-ahead and filters, beyond the packet itself) and where
    the values come from."""

    ie: float
    bpl: float
    delay_ms: float
    source: str


# Narrowband scale (G.711 = 0). Every decoder of this phone conceals lost packets,
# so the values "with PLC" apply.
CODECS: dict[str, CodecImpairment] = {
    "PCMU": CodecImpairment(0.0, 25.1, 0.0, "G.113 Appendix I, Table I.3: G.711 with PLC (G.711 Appendix I)"),
    "PCMA": CodecImpairment(0.0, 25.1, 0.0, "G.113 Appendix I, Table I.3: G.711 with PLC (G.711 Appendix I)"),
    # G.113 Appendix IV rates G.722 at 64 kbit/s Ie,wb = 13 on the wideband scale, where
    # G.711 is 36: better than G.711, which the narrowband scale cannot express (Ie >= 0).
    # G.113 gives no narrowband Bpl for it; its concealment here is waveform repetition
    # as for G.711, so G.711's Bpl with PLC stands in. Delay: the transmit and receive
    # QMF filters (24 taps each at 16 kHz).
    "G722": CodecImpairment(0.0, 25.1, 1.5, "G.113 Appendix IV (Ie,wb 13 < G.711's 36); Bpl of G.711 with PLC"),
    # ITU-T has published no Ie/Bpl for Opus. At the wideband rates used here it scores
    # at least as well as G.711 in listening tests, hence Ie = 0; its built-in concealment
    # gets G.711-with-PLC's Bpl. Delay: 6.5 ms look-ahead beyond the 20 ms frame
    # (RFC 6716 §2: "26.5 ms" algorithmic delay for 20 ms frames).
    "OPUS": CodecImpairment(0.0, 25.1, 6.5, "no ITU-T value: Ie 0 and Bpl of G.711 with PLC, assumed"),
}

DEFAULTS = Defaults()


def _lg(x: float) -> float:
    return math.log10(x)


def noise_sum(d: Defaults = DEFAULTS) -> float:
    """No, the power addition of the noise sources, dBm0p (G.107 §7.2)."""
    olr = d.slr + d.rlr
    nos = d.ps - d.slr - d.ds - 100 + 0.004 * (d.ps - olr - d.ds - 14) ** 2
    pre = d.pr + 10 * _lg(1 + 10 ** ((10 - d.lstr) / 10))
    nor = d.rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = d.nfor + d.rlr
    return 10 * _lg(10 ** (d.nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))


def basic_signal_to_noise(d: Defaults = DEFAULTS) -> float:
    """Ro = 15 - 1.5 (SLR + No) (G.107 §7.2)."""
    return 15 - 1.5 * (d.slr + noise_sum(d))


def simultaneous_impairment(d: Defaults = DEFAULTS, t_ms: float = 0.0) -> float:
    """Is = Iolr + Ist + Iq (G.107 §7.3)."""
    no = noise_sum(d)
    ro = basic_signal_to_noise(d)
    olr = d.slr + d.rlr
    xolr = olr + 0.2 * (64 + no - d.rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * _lg(10 ** (-d.stmr / 10) + math.exp(-t_ms / 4) * 10 ** (-d.telr / 10))
    ist = (
        12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )
    q = 37 - 15 * _lg(d.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * _lg(1 + 10**y + 10**z)
    return float(iolr + ist + iq)


def delay_impairment(t_ms: float, d: Defaults = DEFAULTS) -> float:
    """Id = Idte + Idle + Idd (G.107 §7.4) for a one-way mouth-to-ear delay ``t_ms``,
    taken as the talker-echo delay T and the absolute delay Ta, with the listener-echo
    round trip Tr = 2T."""
    t = max(0.0, t_ms)
    ta, tr = t, 2 * t
    no = noise_sum(d)
    ro = basic_signal_to_noise(d)
    roe = -1.5 * (no - d.rlr)
    terv = d.telr - 40 * _lg((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    rle = 10.5 * (d.wepl + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    idd = 0.0
    if ta > d.mt:
        x = _lg(ta / d.mt) / _lg(2)
        p = 6 * d.st
        idd = 25 * ((1 + x**p) ** (1 / p) - 3 * (1 + (x / 3) ** p) ** (1 / p) + 2)
    return float(idte + idle + idd)


def effective_equipment_impairment(ie: float, bpl: float, ppl: float, burst_r: float = 1.0) -> float:
    """Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl) (G.107 §7.5), ``ppl`` the
    packet-loss probability in percent, ``burst_r`` 1 for random loss."""
    if bpl <= 0 or burst_r <= 0:
        raise ValueError(f"Bpl and BurstR must be positive, not {bpl} and {burst_r}")
    ppl = min(100.0, max(0.0, ppl))
    return ie + (95 - ie) * ppl / (ppl / burst_r + bpl)


_RO = basic_signal_to_noise()


def rating(
    *, delay_ms: float = 0.0, ie: float = 0.0, bpl: float = 25.1, loss_pct: float = 0.0, burst_r: float = 1.0,
    defaults: Defaults = DEFAULTS,
) -> float:
    """The transmission rating factor R = Ro - Is - Id - Ie,eff + A (G.107 §7.1)."""
    ro = _RO if defaults is DEFAULTS else basic_signal_to_noise(defaults)
    return (
        ro
        - simultaneous_impairment(defaults, delay_ms)
        - delay_impairment(delay_ms, defaults)
        - effective_equipment_impairment(ie, bpl, loss_pct, burst_r)
        + defaults.advantage
    )


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score (1 .. 4.5) for a rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    # MOS_CQE = 1 + 0.035 R + R (R - 60) (100 - R) 7 10^-6; a little under 1 for R < 6.5
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def codec_impairment(codec: str) -> CodecImpairment | None:
    """The table's entry for an audio codec name (any case); None for one it lacks."""
    return CODECS.get(codec.upper())


def estimate_mos(
    codec: str, *, loss_pct: float, rtt_ms: float | None, buffer_ms: float, ptime_ms: float, burst_r: float = 1.0
) -> float | None:
    """MOS of a call leg: codec and measured loss give Ie,eff; half the round trip, the
    jitter buffer, the packet and the codec's own delay give the mouth-to-ear delay.
    None for a codec without a table entry."""
    impairment = codec_impairment(codec)
    if impairment is None:
        return None
    delay = (rtt_ms or 0.0) / 2 + buffer_ms + ptime_ms + impairment.delay_ms
    r = rating(delay_ms=delay, ie=impairment.ie, bpl=impairment.bpl, loss_pct=loss_pct, burst_r=burst_r)
    return mos_from_r(r)
