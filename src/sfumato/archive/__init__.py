"""File-first archive: pictures carry their recipe (A1111 text + Sfumato JSON); a rebuildable index.

Entry points: ``Archive(settings).save(item)`` (write + index), ``save_image`` (write only),
``read_metadata`` / ``request_from_image`` (recall), ``infotext`` / ``request_from_infotext``.
"""
