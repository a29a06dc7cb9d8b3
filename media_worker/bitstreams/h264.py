"""H.264 Annex-B access units: NAL unit types, keyframes and the picture size from the SPS
(ITU-T H.264 §7.3.2.1.1), without decoding.

aiortc depayloads an H.264 RTP frame into one Annex-B access unit: every NAL unit prefixed with
``00 00 00 01``. A frame that lost its first packets starts without a start code; its leading
bytes are skipped, so a truncated access unit never passes as a keyframe unless it still holds
a complete IDR slice start.
"""
from __future__ import annotations

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8

# profile_idc values whose SPS carries chroma_format_idc and the bit depths (§7.3.2.1.1).
_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


def nal_types(access_unit: bytes) -> list[int]:
    """The ``nal_unit_type`` of each NAL unit in ``access_unit``, in order."""
    types: list[int] = []
    find = access_unit.find
    pos = find(b"\x00\x00\x01")
    end = len(access_unit) - 3
    while 0 <= pos < end:
        types.append(access_unit[pos + 3] & 0x1F)
        pos = find(b"\x00\x00\x01", pos + 4)
    return types


def is_keyframe(access_unit: bytes) -> bool:
    """True if the access unit holds an IDR slice."""
    return NAL_IDR in nal_types(access_unit)


def nal_units(access_unit: bytes) -> list[bytes]:
    """The NAL units (header byte included, start codes and trailing zero bytes removed)."""
    units: list[bytes] = []
    find = access_unit.find
    pos = find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = find(b"\x00\x00\x01", start)
        unit = access_unit[start:nxt if nxt >= 0 else len(access_unit)]
        units.append(unit.rstrip(b"\x00") if nxt >= 0 else unit)
        pos = nxt
    return [u for u in units if u]


def length_prefixed_units(sample: bytes, length_size: int = 4) -> list[bytes] | None:
    """The NAL units of a Matroska/MP4 sample (each unit after its ``length_size``-byte length,
    ``avcC``'s lengthSizeMinusOne + 1), or None when the lengths do not add up to the sample."""
    units, pos = [], 0
    while pos + length_size <= len(sample):
        n = int.from_bytes(sample[pos:pos + length_size], "big")
        pos += length_size
        if n == 0 or pos + n > len(sample):
            return None
        units.append(sample[pos:pos + n])
        pos += n
    return units if units and pos == len(sample) else None


def sample_size(sample: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the SPS of a stored keyframe: a length-prefixed sample (what
    the live path's Matroska files hold) or an Annex-B access unit; None without an SPS."""
    units = length_prefixed_units(sample)
    return keyframe_size(sample) if units is None else _first_sps_size(units)


def keyframe_size(access_unit: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first SPS of an access unit, ``None`` if it has none or the
    SPS cannot be parsed."""
    return _first_sps_size(nal_units(access_unit))


def _first_sps_size(units: list[bytes]) -> tuple[int, int] | None:
    for unit in units:
        if unit[0] & 0x1F == NAL_SPS:
            try:
                return sps_size(unit)
            except (IndexError, ValueError):
                return None
    return None


class _Bits:
    """An MSB-first bit reader over an RBSP (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes):
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8

    def u(self, n: int) -> int:
        if n > self.left:
            raise IndexError("SPS is truncated")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _rbsp(unit: bytes) -> bytes:
    """Remove emulation prevention bytes (``00 00 03`` → ``00 00``)."""
    return unit.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in unit else unit


def sps_size(sps: bytes) -> tuple[int, int]:
    """Cropped picture ``(width, height)`` of an SPS NAL unit (header byte included)."""
    r = _Bits(_rbsp(sps[1:]))
    profile_idc = r.u(8)
    r.u(16)  # constraint flags, reserved bits, level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.u(1)
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):  # seq_scaling_list_present_flag[i]
                    last, nxt = 8, 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.u(1)  # delta_pic_order_always_zero_flag
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(r.ue()):  # num_ref_frames_in_pic_order_cnt_cycle
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.u(1):  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 1 if chroma_format_idc == 3 else 2
            sub_h = 2 if chroma_format_idc == 1 else 1
            unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS crops the picture away")
    return width, height
