"""ArchtuneError keeps any message readable, whatever it quotes."""

from __future__ import annotations

from archtune.errors import LONGEST_WORD, ArchtuneError


def test_a_long_run_of_characters_is_cut_and_the_rest_kept() -> None:
    err = ArchtuneError(f"spec.yaml: layer 0: kernel_size {'9' * 5000} is too large")
    text = str(err)
    assert text.startswith("spec.yaml: layer 0: kernel_size 999") and text.endswith(" is too large")
    assert len(text) < LONGEST_WORD + 60 and "9" * LONGEST_WORD not in text


def test_ordinary_messages_and_listed_lines_are_unchanged() -> None:
    listed = "folder: 2 unreadable image file(s):\n  a.png: truncated\n  b.png: empty"
    assert str(ArchtuneError(listed)) == listed
    path = "/data/" + "p" * 150 + "/x.png"  # a long path stays whole
    assert str(ArchtuneError(f"{path}: empty")) == f"{path}: empty"
