from textkit import slugify, title_case, word_count


def test_word_count_mixed_whitespace():
    assert word_count(" a\n\nb\t c \r\n") == 3


def test_word_count_empty():
    assert word_count("   ") == 0


def test_slugify_digits_and_symbols():
    assert slugify("  Release 2.0 -- NOW!! ") == "release-2-0-now"


def test_title_case_unchanged():
    assert title_case("already Fine") == "Already Fine"
