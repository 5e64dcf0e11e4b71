#!/usr/bin/env python3
"""Writes configs/data/polarity/{negative,positive}.txt: a small synthetic
sentiment corpus for the attention-pooled LSTM classifier (one example per
line, one class per file, as qkv's text-classification data set reads it).

Each review is neutral filler around one opinion word; "not" before the
opinion word flips it, so the class depends on a word and its left
neighbour, never on the filler. An attention-pooling classifier should learn
to put its weight on the opinion word, which `qkv predict` then shows.

Deterministic (seeded); rerun to regenerate: python3 configs/data/make_polarity.py
"""
import os
import random

POS = ["good", "great", "excellent", "wonderful", "superb", "delightful", "brilliant",
       "enjoyable", "charming", "moving", "fantastic", "lovely"]
NEG = ["bad", "awful", "terrible", "boring", "dreadful", "dull", "poor", "weak",
       "tedious", "clumsy", "painful", "mediocre"]
SUBJ = ["the film", "this movie", "the plot", "the acting", "the script", "the ending",
        "the music", "the cast", "the story", "the director's work", "the dialogue",
        "the camera work", "the second half", "the opening scene"]
VERB = ["was", "is", "seemed", "felt", "turned out", "looked"]
FILL = ["honestly", "overall", "to me", "in the end", "at times", "for the most part",
        "as expected", "i think", "frankly", "somehow"]
TAIL = ["and i saw it twice", "on a rainy sunday", "with my friends", "at the festival",
        "despite the hype", "given the budget", "for a sequel", "as a whole",
        "from start to finish", "in my view"]


def review(rng, positive):
    negate = rng.random() < 0.3
    word = rng.choice(NEG if positive == negate else POS)  # "not bad" is positive
    parts = []
    if rng.random() < 0.5:
        parts.append(rng.choice(FILL))
    parts += [rng.choice(SUBJ), rng.choice(VERB)]
    if negate:
        parts.append("not")
    parts.append(word)
    if rng.random() < 0.6:
        parts.append(rng.choice(TAIL))
    return " ".join(parts)


def main():
    rng = random.Random(7)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "polarity")
    os.makedirs(out, exist_ok=True)
    for name, positive in (("negative", False), ("positive", True)):
        lines = sorted({review(rng, positive) for _ in range(4000)})
        rng.shuffle(lines)
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.write("\n".join(lines[:2000]) + "\n")


if __name__ == "__main__":
    main()
