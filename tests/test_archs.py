"""Architecture files (``--archs``): byte-order marks, headers, NASLib tuples and line numbers."""

from __future__ import annotations

import json
import re

import pytest

from proxybench.archs import read_archs
from proxybench.errors import ProxybenchError
from proxybench.spaces import get_space
from proxybench.spaces.nb201 import from_naslib_tuple

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NASLIB = "(0, 1, 2, 3, 4, 1)"


@pytest.fixture()
def nb201():
    return get_space("nb201")


def write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "archs.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_bom_and_header_are_not_architectures(tmp_path, nb201):
    path = write(tmp_path, f"arch,uid\n{ARCH},x\n", encoding="utf-8-sig")
    assert read_archs(path, nb201) == [ARCH]


@pytest.mark.parametrize("header", ["arch", "architecture", "arch_str,val_accuracy", "Arch String"])
def test_any_plain_word_header_is_skipped(tmp_path, nb201, header):
    assert read_archs(write(tmp_path, f"# made by hand\n\n{header}\n{ARCH}\n"), nb201) == [ARCH]


def test_naslib_tuples_are_read_whole_and_decoded(tmp_path, nb201):
    path = write(tmp_path, f"{NASLIB}\n\"{NASLIB}\",93.1\n{NASLIB},93.1\n[0, 1, 2, 3, 4, 1]\n")
    assert read_archs(path, nb201) == [from_naslib_tuple(NASLIB)] * 4


def test_ofa_json_is_read_whole(tmp_path):
    ofa = get_space("ofa")
    arch = ofa.sample(1, seed=0)[0]
    spaced = json.dumps(json.loads(arch), indent=None, separators=(", ", ": "))
    assert read_archs(write(tmp_path, f"arch\n{spaced}\n{arch},extra\n"), ofa) == [arch, arch]


def test_errors_name_the_file_and_line(tmp_path, nb201):
    path = write(tmp_path, f"arch\n{ARCH}\n\n|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|\n")
    with pytest.raises(ProxybenchError, match=rf"^{re.escape(str(path))}:4: .*bogus"):
        read_archs(path, nb201)


def test_a_bad_first_line_that_is_not_a_word_is_an_error_not_a_header(tmp_path, nb201):
    path = write(tmp_path, "|none~0|\n")
    with pytest.raises(ProxybenchError, match=rf"^{re.escape(str(path))}:1: "):
        read_archs(path, nb201)
    path = write(tmp_path, "arch\n(0, 1, 2)\n")
    with pytest.raises(ProxybenchError, match=rf"^{re.escape(str(path))}:2: .*3 entries, needs 6"):
        read_archs(path, nb201)


def test_empty_and_non_utf8_files(tmp_path, nb201):
    with pytest.raises(ProxybenchError, match="lists no architectures"):
        read_archs(write(tmp_path, "arch,uid\n# nothing\n"), nb201)
    (tmp_path / "latin.txt").write_bytes(b"arch\xe9\n")
    with pytest.raises(ProxybenchError, match="not UTF-8"):
        read_archs(tmp_path / "latin.txt", nb201)
