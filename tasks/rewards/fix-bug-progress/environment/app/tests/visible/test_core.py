from textkit import slugify, title_case, word_count


def test_word_count_spaces():
    assert word_count("one two  three") == 3


def test_word_count_newlines_and_tabs():
    assert word_count("one\ttwo\nthree") == 3


def test_slugify_lowercases():
    assert slugify("Hello, World!") == "hello-world"


def test_title_case():
    assert title_case("hELLO wORLD") == "Hello World"
