"""VP8, H.264 and H.265 through PyAV: round trips, keyframes, bitrate, Annex B, losses, factory."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import numpy as np
import pytest

from softphone.codecs import CodecError, create_video_decoder, create_video_encoder, registry, video_codec_names
from softphone.codecs.video_av import annexb_nal_types
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

W, H, FPS = 640, 480, 30
AV_CODECS = ["VP8", "H264", "H265"]


def picture(i: int, width: int = W, height: int = H) -> np.ndarray:
    """A moving synthetic picture: drifting gradients and waves, a sliding box, fixed bars."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack([
        ((x + 4 * i) % 256).astype(np.uint8),
        ((y + 2 * i) % 256).astype(np.uint8),
        (128 + 60 * np.sin((x + y + 3 * i) / 40.0)).astype(np.uint8),
    ])
    left = (8 * i) % (width - 80)
    image[height // 4 : height // 4 + 100, left : left + 80] = (0, 0, 255)
    for k, row in enumerate(range(height // 2, height - 8, 48)):
        image[row : row + 8, :] = 255 if k % 2 else 0
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def encode_all(encoder, count: int, *, keyframes: tuple[int, ...] = (), start: int = 0) -> list[tuple[bytes, bool]]:
    out = []
    for i in range(start, start + count):
        produced = encoder.encode(VideoFrame(picture(i), pts=i / FPS, index=i), keyframe=i in keyframes)
        assert len(produced) == 1, f"frame {i}: {len(produced)} outputs"
        out.extend(produced)
    return out


@pytest.fixture(scope="module", params=AV_CODECS)
def stream(request):
    """60 frames at 640x480, 1 Mbit/s, keyframes forced at 17 and 41, plus their decoded pictures."""
    name = request.param
    encoder = create_video_encoder(name, width=W, height=H, fps=FPS, bitrate=1_000_000)
    decoder = create_video_decoder(name)
    encoded = encode_all(encoder, 60, keyframes=(17, 41))
    decoded = [decoder.decode(data) for data, _key in encoded]
    return name, encoded, decoded


def test_round_trip_sizes_and_quality(stream) -> None:
    name, encoded, decoded = stream
    assert all(len(frames) == 1 for frames in decoded)
    pictures = [frames[0] for frames in decoded]
    assert all(p.image.shape == (H, W, 3) and p.image.dtype == np.uint8 for p in pictures)
    assert [p.index for p in pictures] == list(range(60))
    quality = np.mean([psnr(p.image, picture(i)) for i, p in enumerate(pictures)])
    print(f"{name}: mean PSNR {quality:.1f} dB, {sum(len(d) for d, _ in encoded) * 8 / 2 / 1000:.0f} kbit/s")
    assert quality > 30.0
    kbps = sum(len(d) for d, _ in encoded) * 8 / (60 / FPS) / 1000
    assert 300 < kbps < 2000


def test_first_frame_and_forced_frames_are_keyframes(stream) -> None:
    _name, encoded, _decoded = stream
    keys = [i for i, (_data, key) in enumerate(encoded) if key]
    assert keys[:1] == [0]
    assert 17 in keys and 41 in keys
    assert len(keys) <= 4  # the periodic interval (4 s) is far away


def test_keyframe_flag_matches_the_bitstream(stream) -> None:
    name, encoded, _decoded = stream
    for data, key in encoded:
        if name == "VP8":
            assert (data[0] & 1 == 0) == key  # RFC 6386 §9.1: frame type bit, 0 = key frame
        elif name == "H264":
            assert (5 in annexb_nal_types(data)) == key
        else:
            assert any(16 <= t <= 23 for t in annexb_nal_types(data, hevc=True)) == key


def test_h264_is_annex_b_with_parameter_sets_on_keyframes() -> None:
    encoder = create_video_encoder("H264", width=W, height=H, fps=FPS, bitrate=1_000_000)
    for i, (data, key) in enumerate(encode_all(encoder, 30, keyframes=(20,))):
        assert data.startswith(b"\x00\x00\x00\x01")
        types = annexb_nal_types(data)
        if key:
            assert types[:2] == [7, 8] and 5 in types, (i, types)
            sps = data[4:8]
            assert sps[1] == 66 and sps[3] == 31  # profile_idc baseline, level 3.1
            assert sps[2] & 0x40  # constraint_set1: constrained baseline (42e01f-compatible)
        else:
            assert 1 in types and not {5, 7, 8} & set(types), (i, types)


def test_h265_is_annex_b_with_parameter_sets_on_keyframes() -> None:
    encoder = create_video_encoder("H265", width=W, height=H, fps=FPS, bitrate=1_000_000)
    for data, key in encode_all(encoder, 12, keyframes=(8,)):
        assert data.startswith(b"\x00\x00\x00\x01")
        types = annexb_nal_types(data, hevc=True)
        if key:
            assert types[:3] == [32, 33, 34] and any(16 <= t <= 21 for t in types), types
        else:
            assert not {32, 33, 34} & set(types)


def test_h264_packetization_mode_0_keeps_slices_small() -> None:
    fmtp = "profile-level-id=42e01f;packetization-mode=0"
    encoder = create_video_encoder("H264", width=1280, height=720, fps=FPS, bitrate=3_000_000, fmtp=fmtp)
    for i in range(3):
        data, _key = encoder.encode(VideoFrame(picture(i, 1280, 720)))[0]
        nals = [n for n in data.split(b"\x00\x00\x01") if n]
        assert len(nals) > 2 and max(len(n) for n in nals) <= 1200


@pytest.mark.parametrize(("name", "force"), [("VP8", True), ("H264", False), ("H265", True)])
def test_set_bitrate_changes_the_output_size(name: str, force: bool) -> None:
    encoder = create_video_encoder(name, width=W, height=H, fps=FPS, bitrate=2_000_000)
    high = encode_all(encoder, 60)
    encoder.set_bitrate(200_000)
    low = encode_all(encoder, 60, start=60, keyframes=(60,) if force else ())
    assert encoder.bitrate == 200_000
    before = sum(len(d) for d, _ in high[30:])
    after = sum(len(d) for d, _ in low[30:])
    print(f"{name}: {before * 8 // 1000} kbit/s -> {after * 8 // 1000} kbit/s")
    assert after < before / 3


@pytest.mark.parametrize("name", ["VP8", "H265"])
def test_bitrate_change_waits_for_the_periodic_keyframe(name: str) -> None:
    fps = 5  # a keyframe every 20 frames
    encoder = create_video_encoder(name, width=320, height=240, fps=fps, bitrate=1_000_000)
    frames = [encoder.encode(VideoFrame(picture(i, 320, 240)))[0] for i in range(5)]
    encoder.set_bitrate(100_000)
    assert encoder.bitrate == 1_000_000  # not yet
    for i in range(5, 25):
        frames.extend(encoder.encode(VideoFrame(picture(i, 320, 240))))
    assert encoder.bitrate == 100_000
    assert [i for i, (_d, key) in enumerate(frames) if key] == [0, 20]


@pytest.mark.parametrize("name", AV_CODECS)
def test_frames_of_another_size_are_scaled(name: str) -> None:
    encoder = create_video_encoder(name, width=W, height=H, fps=FPS, bitrate=1_000_000)
    decoder = create_video_decoder(name)
    for i, (width, height) in enumerate([(320, 240), (1280, 720), (642, 481), (W, H)]):
        data, _key = encoder.encode(VideoFrame(picture(i, width, height)))[0]
        (out,) = decoder.decode(data)
        assert (out.width, out.height) == (W, H)
    gray = encoder.encode(VideoFrame(np.full((H, W), 128, np.uint8)))
    assert gray and decoder.decode(gray[0][0])[0].image.shape == (H, W, 3)
    with pytest.raises(CodecError):
        encoder.encode(VideoFrame(np.zeros((H, W, 4), np.uint8)))


@pytest.mark.parametrize("name", AV_CODECS)
def test_decoder_rejects_garbage_without_crashing(name: str) -> None:
    encoder = create_video_encoder(name, width=320, height=240, fps=FPS, bitrate=500_000)
    frames = [encoder.encode(VideoFrame(picture(i, 320, 240)), keyframe=i == 6)[0][0] for i in range(8)]
    decoder = create_video_decoder(name)
    rng = np.random.default_rng(7)
    junk = [
        b"",
        rng.bytes(1),
        rng.bytes(700),
        b"\x00\x00\x00\x01" + rng.bytes(300),
        frames[0][: len(frames[0]) // 3],
        frames[0][:8],
        frames[3],
        bytes(200),
    ]
    started = time.perf_counter()
    for data in junk:
        try:
            out = decoder.decode(data)
        except CodecError:
            continue
        assert all(f.image.shape == (240, 320, 3) for f in out)
    assert time.perf_counter() - started < 5.0
    with pytest.raises(CodecError):
        decoder.decode(b"")
    # A keyframe brings the decoder back.
    (out,) = decoder.decode(frames[6])
    assert psnr(out.image, picture(6, 320, 240)) > 30.0
    (out,) = decoder.decode(frames[7])
    assert psnr(out.image, picture(7, 320, 240)) > 30.0


@pytest.mark.parametrize("name", AV_CODECS)
def test_decoder_needs_a_keyframe_to_start(name: str) -> None:
    encoder = create_video_encoder(name, width=320, height=240, fps=FPS, bitrate=500_000)
    frames = [encoder.encode(VideoFrame(picture(i, 320, 240)), keyframe=i == 4)[0] for i in range(6)]
    decoder = create_video_decoder(name)
    for data, key in frames[1:4]:
        assert not key
        with pytest.raises(CodecError):
            decoder.decode(data)
    (out,) = decoder.decode(frames[4][0])
    assert psnr(out.image, picture(4, 320, 240)) > 30.0


@pytest.mark.parametrize("name", AV_CODECS)
def test_decoder_survives_a_missing_frame_and_recovers_at_the_keyframe(name: str) -> None:
    encoder = create_video_encoder(name, width=W, height=H, fps=FPS, bitrate=1_000_000)
    encoded = encode_all(encoder, 40, keyframes=(30,))
    decoder = create_video_decoder(name)
    quality: dict[int, float] = {}
    errors = 0
    for i, (data, _key) in enumerate(encoded):
        if i == 10:
            continue  # lost
        try:
            out = decoder.decode(data)
        except CodecError:
            errors += 1
            continue
        for frame in out:
            assert frame.image.shape == (H, W, 3)
            quality[i] = psnr(frame.image, picture(i))
    assert all(quality[i] > 30.0 for i in range(10))
    assert all(i in quality and quality[i] > 30.0 for i in range(30, 40))
    damaged = [quality.get(i, 0.0) for i in range(11, 30)]
    print(f"{name}: {errors} errors after the loss, worst PSNR before the keyframe {min(damaged):.1f} dB")


def test_h264_decoder_is_primed_by_sprop_parameter_sets() -> None:
    encoder = create_video_encoder("H264", width=320, height=240, fps=FPS, bitrate=500_000)
    data, key = encoder.encode(VideoFrame(picture(0, 320, 240)))[0]
    assert key
    nals = [n.rstrip(b"\x00") for n in data.split(b"\x00\x00\x01")[1:]]  # 4- and 3-byte start codes
    sps = next(n for n in nals if n[0] & 0x1F == 7)
    pps = next(n for n in nals if n[0] & 0x1F == 8)
    slices = b"".join(b"\x00\x00\x00\x01" + n for n in nals if n[0] & 0x1F == 5)
    sprop = ",".join(base64.b64encode(n).decode() for n in (sps, pps))
    with pytest.raises(CodecError):
        create_video_decoder("H264").decode(slices)
    decoder = create_video_decoder("H264", fmtp=f"packetization-mode=1;sprop-parameter-sets={sprop}")
    (out,) = decoder.decode(slices)
    assert psnr(out.image, picture(0, 320, 240)) > 30.0


@pytest.mark.parametrize("name", ["vp8", "Vp8", "VP8/90000", "h264", "H264", "h265", "H265", "jpeg"])
def test_video_names_are_case_insensitive(name: str) -> None:
    encoder = create_video_encoder(name, width=320, height=240, fps=15, bitrate=300_000)
    decoder = create_video_decoder(name)
    assert encoder.name == decoder.name == registry.lookup(name, "video").name
    assert (encoder.width, encoder.height) == (320, 240)


def test_unknown_video_codec_lists_the_video_codecs() -> None:
    assert video_codec_names() == ["VP8", "H264", "H265", "JPEG"]
    with pytest.raises(ConfigError) as info:
        create_video_encoder("AV1", width=W, height=H, fps=FPS, bitrate=1_000_000)
    assert info.value.message == "unknown video codec 'AV1'; available: VP8, H264, H265, JPEG"
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="unknown video codec 'PCMU'; available: VP8, H264, H265, JPEG"):
        create_video_decoder("PCMU")


@pytest.mark.parametrize(("width", "height", "fps"), [(641, 480, 30), (640, 0, 30), (640, 480, 0)])
def test_bad_video_parameters_are_config_errors(width: int, height: int, fps: float) -> None:
    for name in AV_CODECS:
        with pytest.raises(ConfigError):
            create_video_encoder(name, width=width, height=height, fps=fps, bitrate=1_000_000)


def test_every_video_implementation_path_resolves() -> None:
    import importlib

    for info in registry.VIDEO_CODECS:
        module, _, attr = info.implementation.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        assert callable(cls.encoder) and callable(cls.decoder)


def test_importing_the_package_loads_no_video_library() -> None:
    code = "import sys, softphone.codecs\nprint(','.join(m for m in ('numpy', 'av', 'cv2') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(("name", "budget_ms"), [("VP8", 20.0), ("H264", 20.0)])
def test_encode_and_decode_fit_the_frame_budget(name: str, budget_ms: float) -> None:
    """30 fps on two cores leaves 66 ms of CPU per frame for everything; the codec pair must take far less.

    CPU time of this process (all its threads), so that other programs on the machine do not count.
    """
    encoder = create_video_encoder(name, width=W, height=H, fps=FPS, bitrate=1_000_000)
    decoder = create_video_decoder(name)
    images = [picture(i) for i in range(30)]
    decoder.decode(encoder.encode(VideoFrame(images[0]))[0][0])
    rounds = []
    for chunk in (images[:10], images[10:20], images[20:]):
        started = time.process_time()
        for image in chunk:
            for data, _key in encoder.encode(VideoFrame(image)):
                decoder.decode(data)
        rounds.append((time.process_time() - started) / len(chunk) * 1000)
    print(f"{name} 640x480: {min(rounds):.1f} ms of CPU per frame (encode + decode)")
    assert min(rounds) < budget_ms
