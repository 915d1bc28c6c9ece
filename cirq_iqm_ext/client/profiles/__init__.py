"""Protocol profiles: how the client's operations map onto one wire API (see :mod:`.base`).

- ``cocos-v1`` (:mod:`.cocos_v1`): the CoCoS v1 job API of PROTOCOL.md;
- ``iqm-server`` (:mod:`.iqm_server`): the IQM Server API of PROTOCOL_IQM_SERVER.md;
- :mod:`.choice` picks one of them, by name or from what the server answers.

The package itself imports nothing, so importing :mod:`.base` loads no profile.
"""
