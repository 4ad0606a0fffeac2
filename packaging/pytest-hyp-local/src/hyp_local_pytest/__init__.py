"""pytest fixtures for hyp-local's emulators (registered as the ``hyp_local`` pytest plugin).

The fixtures live in :mod:`hyp_local_pytest.plugin`; what they hand out is importable for your own helpers:
:class:`HypLocal` (the ``hyp`` command, starts emulators), :class:`PubSubEmulator` and :class:`HttpEmulator`
(running emulators and their clients), and :class:`hyp_local_pytest.containers.HypPubSubContainer`
(testcontainers' idiom; needs ``testcontainers``).
"""

from hyp_local_pytest.emulators import HttpEmulator, HypLocal, HypNotFound, PubSubEmulator

__all__ = ["HttpEmulator", "HypLocal", "HypNotFound", "PubSubEmulator"]
