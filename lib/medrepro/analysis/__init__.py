"""Evaluation, explanations and their scores, and the papers' internal consistency."""
