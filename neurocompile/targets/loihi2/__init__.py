"""Loihi 2: the integer program format (:mod:`.program`), quantization (:mod:`.quantize`,
:mod:`.connections`, :mod:`.conv`, :mod:`.sigma_delta`), partition onto cores (:mod:`.partition`),
the bit-accurate emulators (:mod:`.emulator`, :mod:`.emulator_fast`), the Lava runner
(:mod:`.lava`) and the target classes (:mod:`.target`)."""
