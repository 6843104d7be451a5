"""The table of generators: every entry declares what it is, needs and draws."""

import numpy as np

from forensics_scan import generators, tts


def test_every_generator_declares_its_kind_and_samples_valid_options():
    rng = np.random.default_rng(0)
    for name, generator in generators.GENERATORS.items():
        assert generator.name == name
        assert generator.kind in (generators.COPY_SYNTHESIS, generators.TTS)
        assert isinstance(generator.sample_options(rng), dict)
        if generator.kind == generators.TTS:
            assert "voice" in generator.sample_options(rng) and generator.engine


def test_missing_pyworld_makes_world_generators_unavailable(monkeypatch):
    real_find_spec = generators.importlib.util.find_spec
    monkeypatch.setattr(generators.importlib.util, "find_spec",
                        lambda name: None if name == "pyworld" else real_find_spec(name))
    assert "pyworld" in generators.GENERATORS["world_dio"].missing()
    assert generators.GENERATORS["griffin_lim_mel80"].available()  # librosa only


def test_kokoro_voice_options_blend_two_different_shipped_voices():
    rng = np.random.default_rng(0)
    for _ in range(20):
        options = generators.GENERATORS["kokoro"].sample_options(rng)
        assert {options["voice"], options["blend"]} <= set(tts.KOKORO_VOICES)
        assert options["voice"] != options["blend"] and 0 <= options["mix"] <= 0.5
    assert generators.GENERATORS["kokoro"].family == "kokoro"
