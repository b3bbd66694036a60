"""ImproveConfig: hyperparameters checked once, at construction, and never changed from outside."""

from __future__ import annotations

import dataclasses

import pytest

from amplify_agents import ImproveConfig, RetrievalSettings


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("strategy", "success", "learns from errors"),
        ("demo_setting", "both", "demo_setting"),
        ("on_overlap", "ignore", "on_overlap"),
        ("rounds", 0, "rounds must be >= 1"),
        ("k", 0, "k must be >= 1"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImproveConfig(**{field: value})  # type: ignore[arg-type]


def test_config_is_frozen_and_records_its_settings() -> None:
    config = ImproveConfig(retrieval=RetrievalSettings(mmr=True))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rounds = 5  # type: ignore[misc]
    assert config.retrieval.mmr and config.recorded()["rounds"] == 3
