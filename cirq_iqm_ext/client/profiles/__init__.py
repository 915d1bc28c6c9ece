"""Protocol profiles: how the client's operations map onto one wire API (see :mod:`.base`).

- ``cocos-v1`` (:mod:`.cocos_v1`): the CoCoS v1 job API of PROTOCOL.md;
- ``iqm-server`` (:mod:`.iqm_server`): the IQM Server API of PROTOCOL_IQM_SERVER.md.

The package itself imports neither, so that :mod:`.base` can choose one lazily.
"""
