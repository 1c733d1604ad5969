// kernels/elementwise.cu built for the emulated device (see cuda_emu.h).
#include "cuda_emu.h"
#include "../kernels/elementwise.cu"
EMU_EXPORT(fill_f32)
EMU_EXPORT(add_bias_f32)
EMU_EXPORT(col_sum_f32)
EMU_EXPORT(relu_f32)
EMU_EXPORT(relu_mask_f32)
EMU_EXPORT(axpy_f32)
EMU_EXPORT(adam_f32)
