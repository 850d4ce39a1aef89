"""A merchant login through a bank, whichever door it came in by: starting it (routing by
``acr_values``, the bank picker and its single-use choice, the interstitial, who may
name the user to a decoupled bank), the pages a browser reloads and comes back to
(:mod:`proxy.login.browser`), waiting for a decoupled bank, and taking its
transaction back once.

May import the web layer and the rules below it; the handlers in
:mod:`proxy.endpoints` call it.
"""
