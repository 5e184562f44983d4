/* The JavaScript engine module, built from runtime/js by CMake and carried
 * in the binary as read-only data (an assembler .incbin: a 1 MB module as
 * a C array would cost the compiler far more than the linker). */
#include "js/js.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global cvx__js_engine_start\n"
        "cvx__js_engine_start:\n"
        ".incbin \"" CVX_JS_ENGINE_PATH "\"\n"
        ".global cvx__js_engine_end\n"
        "cvx__js_engine_end:\n"
        ".previous\n");

extern const uint8_t cvx__js_engine_start[], cvx__js_engine_end[];

const uint8_t *cvx_js_engine(size_t *len) {
    *len = (size_t)(cvx__js_engine_end - cvx__js_engine_start);
    return cvx__js_engine_start;
}
