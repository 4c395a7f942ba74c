/*
 * C accelerator of rapidws.protocol: one function per function of
 * _fallback.py, which is the specification (same positional arguments, same
 * results, same exception types). _accel.py picks this module when it is
 * built, unless RAPIDWS_NO_SPEEDUPS is set; the test suite runs both.
 *
 *   apply_mask(data, mask, /) -> bytes
 *   build_frame(opcode, payload, fin, rsv1, mask, /) -> bytes
 *   parse_frames(buf, frames, make_frame, expect_masked, rsv1_allowed,
 *                max_size, /) -> int
 *   parse_messages(buf, messages, expect_masked, max_size, text, binary, /) -> int
 *   PayloadBuffer(size, /): view() -> memoryview, take(nbytes, mask, /) -> bytes
 *
 * Masking (RFC 6455 §5.3) runs 32 bytes at a time with AVX2 when the CPU has
 * it (chosen at run time, so the module builds with the compiler's default
 * flags), 16 with SSE2 or NEON, then 8 through a 64-bit integer, then byte by
 * byte. Every pass starts at a multiple of 4, so the key needs no rotation.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define RAPIDWS_SSE2 1
#define RAPIDWS_AVX2 1
#elif defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define RAPIDWS_SSE2 1
#elif defined(__ARM_NEON) || defined(__aarch64__)
#include <arm_neon.h>
#define RAPIDWS_NEON 1
#endif

/* ------------------------------------------------------------ masking */

#ifdef RAPIDWS_AVX2
/* Set once at import: whether the CPU runs AVX2 instructions. */
static int have_avx2 = 0;

__attribute__((target("avx2"))) static Py_ssize_t
mask_avx2(uint8_t *dst, const uint8_t *src, Py_ssize_t n, uint32_t key)
{
    const __m256i k = _mm256_set1_epi32((int)key);
    Py_ssize_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(v, k));
    }
    return i;
}
#endif

/* dst[i] = src[i] ^ key[i % 4] for i < n. dst and src may be the same
   buffer, never partly overlapping ones. */
static void
mask_copy(uint8_t *dst, const uint8_t *src, Py_ssize_t n, const uint8_t *key)
{
    uint32_t key32;
    uint64_t key64;
    Py_ssize_t i = 0;

    /* Load the key in memory order: lane j of every vector then holds the
       key byte j % 4, whatever the CPU's byte order. */
    memcpy(&key32, key, 4);
#ifdef RAPIDWS_AVX2
    if (have_avx2 && n >= 64) {
        i = mask_avx2(dst, src, n, key32);
    }
#endif
#if defined(RAPIDWS_SSE2)
    {
        const __m128i k = _mm_set1_epi32((int)key32);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(v, k));
        }
    }
#elif defined(RAPIDWS_NEON)
    {
        const uint8x16_t k = vreinterpretq_u8_u32(vdupq_n_u32(key32));
        for (; i + 16 <= n; i += 16) {
            vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), k));
        }
    }
#endif
    key64 = ((uint64_t)key32 << 32) | key32; /* two copies: same in any byte order */
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, src + i, 8); /* memcpy: no alignment assumed */
        word ^= key64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

/* ------------------------------------------------------------ helpers */

static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected) {
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "%s() takes %zd positional arguments but %zd were given",
                 name, expected, nargs);
    return 0;
}

/* The 4-byte mask key: fills view (to be released) or fails like _fallback:
   TypeError for an object without the buffer protocol, ValueError for a
   wrong length. */
static int
get_mask(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->len != 4) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ apply_mask */

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data = {0}, mask = {0};
    PyObject *result = NULL;

    if (!check_nargs("apply_mask", nargs, 2) || get_mask(args[1], &mask) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        goto exit;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto exit;
    }
    mask_copy((uint8_t *)PyBytes_AS_STRING(result), data.buf, data.len, mask.buf);

exit:
    PyBuffer_Release(&data); /* does nothing for a buffer never filled */
    PyBuffer_Release(&mask);
    return result;
}

/* ------------------------------------------------------------ build_frame */

static PyObject *
build_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer payload = {0}, mask = {0};
    PyObject *result = NULL;
    long opcode;
    int overflow, fin, rsv1;
    Py_ssize_t n, header;
    uint8_t *out;

    if (!check_nargs("build_frame", nargs, 5)) {
        return NULL;
    }
    opcode = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (opcode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow || opcode < 0 || opcode > 0xF) {
        PyErr_Format(PyExc_ValueError, "opcode must be in range(16), got %S", args[0]);
        return NULL;
    }
    if ((fin = PyObject_IsTrue(args[2])) < 0 || (rsv1 = PyObject_IsTrue(args[3])) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (args[4] != Py_None && get_mask(args[4], &mask) < 0) {
        goto exit;
    }

    /* RFC 6455 §5.2: the length in 7 bits, or 126 + 16 bits, or 127 + 64 bits;
       the 4-byte key follows when the MASK bit is set. */
    n = payload.len;
    header = 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + (mask.obj != NULL ? 4 : 0);
    if (n > PY_SSIZE_T_MAX - header) {
        PyErr_NoMemory();
        goto exit;
    }
    result = PyBytes_FromStringAndSize(NULL, header + n);
    if (result == NULL) {
        goto exit;
    }
    out = (uint8_t *)PyBytes_AS_STRING(result);
    out[0] = (uint8_t)(opcode | (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0));
    out[1] = mask.obj != NULL ? 0x80 : 0;
    if (n < 126) {
        out[1] |= (uint8_t)n;
        out += 2;
    }
    else if (n < 65536) {
        out[1] |= 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        out += 4;
    }
    else {
        uint64_t len = (uint64_t)n;
        out[1] |= 127;
        for (int k = 9; k >= 2; k--, len >>= 8) {
            out[k] = (uint8_t)len;
        }
        out += 10;
    }
    if (mask.obj != NULL) {
        memcpy(out, mask.buf, 4);
        mask_copy(out + 4, payload.buf, n, mask.buf);
    }
    else if (n > 0) {
        memcpy(out, payload.buf, (size_t)n);
    }

exit:
    PyBuffer_Release(&payload);
    PyBuffer_Release(&mask);
    return result;
}

/* ------------------------------------------------------------ parse_frames */

/* max_size: None (no limit) or an int >= 0; beyond 64 bits it is no limit. */
static int
get_max_size(PyObject *obj, uint64_t *max_size)
{
    PyObject *index;
    long long value;
    int overflow;

    *max_size = UINT64_MAX;
    if (obj == Py_None) {
        return 0;
    }
    if ((index = PyNumber_Index(obj)) == NULL) {
        return -1;
    }
    value = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (!overflow && value < 0)) {
        PyErr_Format(PyExc_ValueError, "max_size must be >= 0 or None, got %S", obj);
        return -1;
    }
    if (!overflow) {
        *max_size = (uint64_t)value;
    }
    return 0;
}

/* Whether a header may be accepted: the rules of RFC 6455 §5.1, §5.2 and §5.5
   that _fallback.parse_frames checks, in one expression each. */
static int
header_ok(uint8_t b0, uint8_t b1, uint64_t length, int expect_masked, int rsv1_allowed,
          uint64_t max_size)
{
    unsigned opcode = b0 & 0x0F;

    if ((b0 & 0x70) && ((b0 & 0x30) || !rsv1_allowed)) {
        return 0; /* §5.2: reserved bits without an extension that defines them */
    }
    if (!((0x0707u >> opcode) & 1)) {
        return 0; /* §5.2: only opcodes 0-2 and 8-10 are defined */
    }
    if ((opcode & 0x8) && (!(b0 & 0x80) || length > 125)) {
        return 0; /* §5.5: control frames are whole and at most 125 bytes */
    }
    if (((b1 & 0x80) != 0) != expect_masked) {
        return 0; /* §5.1: masked from clients only */
    }
    return (length >> 63) == 0 && length <= max_size; /* §5.2, then the limit */
}

/* The payload length of the header whose length byte is buf[*start - 1]
   (RFC 6455 §5.2: 7 bits, or 126 + 16 bits, or 127 + 64 bits); moves *start
   past the extended length. 0 when those bytes have not all arrived. */
static int
read_length(const uint8_t *buf, Py_ssize_t end, Py_ssize_t *start, uint64_t *length)
{
    Py_ssize_t at = *start;

    if (*length == 126) {
        if (end - at < 2) {
            return 0;
        }
        *length = ((uint64_t)buf[at] << 8) | buf[at + 1];
        *start = at + 2;
    }
    else if (*length == 127) {
        if (end - at < 8) {
            return 0;
        }
        *length = 0;
        for (int k = 0; k < 8; k++) {
            *length = (*length << 8) | buf[at + k];
        }
        *start = at + 8;
    }
    return 1;
}

/* The payload at buf[*start] (after the 4-byte key when masked), unmasked,
   as a new bytes object; moves *start past the key. */
static PyObject *
copy_payload(const uint8_t *buf, Py_ssize_t *start, Py_ssize_t length, int masked)
{
    PyObject *payload;

    if (!masked) {
        return PyBytes_FromStringAndSize((const char *)buf + *start, length);
    }
    payload = PyBytes_FromStringAndSize(NULL, length);
    if (payload != NULL) {
        mask_copy((uint8_t *)PyBytes_AS_STRING(payload), buf + *start + 4, length, buf + *start);
    }
    *start += 4;
    return payload;
}

static PyObject *
parse_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view = {0};
    PyObject *frames, *make_frame, *append = NULL, *result = NULL;
    int expect_masked, rsv1_allowed;
    uint64_t max_size;
    const uint8_t *buf;
    Py_ssize_t pos = 0, end;

    if (!check_nargs("parse_frames", nargs, 6)) {
        return NULL;
    }
    frames = args[1];
    make_frame = args[2];
    if ((expect_masked = PyObject_IsTrue(args[3])) < 0 ||
        (rsv1_allowed = PyObject_IsTrue(args[4])) < 0 || get_max_size(args[5], &max_size) < 0 ||
        PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* A list is appended to directly; anything else through its .append. */
    if (!PyList_CheckExact(frames) && (append = PyObject_GetAttrString(frames, "append")) == NULL) {
        goto exit;
    }
    buf = view.buf;
    end = view.len;
    while (end - pos >= 2) {
        uint8_t b0 = buf[pos], b1 = buf[pos + 1];
        uint64_t length = b1 & 0x7F;
        Py_ssize_t start = pos + 2, avail;
        PyObject *payload, *frame, *opcode, *frame_args[4];
        int failed;

        if (!read_length(buf, end, &start, &length)) {
            break;
        }
        /* Every byte of the header but the mask key is here: check it now,
           before waiting for a payload that may never be acceptable. */
        if (!header_ok(b0, b1, length, expect_masked, rsv1_allowed, max_size)) {
            result = PyLong_FromSsize_t(~pos);
            goto exit;
        }
        avail = end - start - (b1 & 0x80 ? 4 : 0);
        if (avail < 0 || (uint64_t)avail < length) {
            break; /* the rest of this frame is still on its way */
        }
        payload = copy_payload(buf, &start, (Py_ssize_t)length, b1 & 0x80);
        if (payload == NULL) {
            goto exit;
        }
        opcode = PyLong_FromLong(b0 & 0x0F); /* a cached small int */
        frame_args[0] = opcode;
        frame_args[1] = payload;
        frame_args[2] = b0 & 0x80 ? Py_True : Py_False;
        frame_args[3] = b0 & 0x40 ? Py_True : Py_False;
        frame = opcode == NULL ? NULL : PyObject_Vectorcall(make_frame, frame_args, 4, NULL);
        Py_XDECREF(opcode);
        Py_DECREF(payload);
        if (frame == NULL) {
            goto exit;
        }
        if (append == NULL) {
            failed = PyList_Append(frames, frame) < 0;
        }
        else {
            PyObject *none = PyObject_CallOneArg(append, frame);
            failed = none == NULL;
            Py_XDECREF(none);
        }
        Py_DECREF(frame);
        if (failed) {
            goto exit;
        }
        pos = start + (Py_ssize_t)length;
    }
    result = PyLong_FromSsize_t(pos);

exit:
    Py_XDECREF(append);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------ parse_messages */

/* The fast path of _fallback.parse_messages: whole unfragmented TEXT/BINARY
   frames straight to (payload, flag) tuples; stops, without an error, before
   the first frame that is incomplete, breaks a rule, or needs the full parser
   (control frames, fragments, RSV bits, invalid UTF-8). */
static PyObject *
parse_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view = {0};
    PyObject *messages, *text, *binary, *result = NULL;
    int expect_masked;
    uint64_t max_size;
    const uint8_t *buf;
    Py_ssize_t pos = 0, end;

    if (!check_nargs("parse_messages", nargs, 6)) {
        return NULL;
    }
    messages = args[1];
    text = args[4];
    binary = args[5];
    if (!PyList_Check(messages)) {
        PyErr_SetString(PyExc_TypeError, "messages must be a list");
        return NULL;
    }
    if ((expect_masked = PyObject_IsTrue(args[2])) < 0 || get_max_size(args[3], &max_size) < 0 ||
        PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    buf = view.buf;
    end = view.len;
    while (end - pos >= 2) {
        uint8_t b0 = buf[pos], b1 = buf[pos + 1];
        uint64_t length = b1 & 0x7F;
        Py_ssize_t start = pos + 2, avail;
        unsigned opcode = b0 & 0x0F;
        PyObject *payload, *item;

        if (!read_length(buf, end, &start, &length)) {
            break;
        }
        /* FIN, no RSV bit, TEXT or BINARY; then every rule parse_frames checks. */
        if ((b0 & 0xF0) != 0x80 || (opcode != 1 && opcode != 2) ||
            !header_ok(b0, b1, length, expect_masked, 0, max_size)) {
            break;
        }
        avail = end - start - (b1 & 0x80 ? 4 : 0);
        if (avail < 0 || (uint64_t)avail < length) {
            break;
        }
        payload = copy_payload(buf, &start, (Py_ssize_t)length, b1 & 0x80);
        if (payload == NULL) {
            goto exit;
        }
        if (opcode == 1) {
            /* RFC 6455 §8.1: TEXT is UTF-8; the strict codec, as the assembler. */
            PyObject *decoded = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(payload),
                                                     PyBytes_GET_SIZE(payload), NULL);
            if (decoded == NULL) {
                Py_DECREF(payload);
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    goto exit;
                }
                PyErr_Clear();
                break; /* the full parser fails the connection with 1007 */
            }
            Py_DECREF(decoded);
        }
        item = PyTuple_Pack(2, payload, opcode == 1 ? text : binary);
        Py_DECREF(payload);
        if (item == NULL) {
            goto exit;
        }
        if (PyList_Append(messages, item) < 0) {
            Py_DECREF(item);
            goto exit;
        }
        Py_DECREF(item);
        pos = start + (Py_ssize_t)length;
    }
    result = PyLong_FromSsize_t(pos);

exit:
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------ PayloadBuffer */

/* The payload of one large frame, read from the network straight into an
   uninitialised bytes object that nothing else can see yet; take() then
   hands out that very object (unmasked in place) when every byte was
   written and no view of it is left, so the payload is never copied after
   the kernel wrote it. While a view exists the object stays here and take()
   copies: a bytes object, once out, never changes. Like the parser that owns
   it, one is used by one thread at a time (exports is a plain counter). */
typedef struct {
    PyObject_HEAD
    PyObject *bytes;    /* the storage; NULL for size 0 */
    Py_ssize_t exports; /* buffers handed out and not released yet */
    int taken;          /* take() was called: empty from then on */
} PayloadBufferObject;

static PyObject *
payload_buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PayloadBufferObject *self;
    PyObject *index;
    Py_ssize_t size;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "PayloadBuffer() takes no keyword arguments");
        return NULL;
    }
    if (!check_nargs("PayloadBuffer", PyTuple_GET_SIZE(args), 1)) {
        return NULL;
    }
    if ((index = PyNumber_Index(PyTuple_GET_ITEM(args, 0))) == NULL) {
        return NULL;
    }
    size = PyLong_AsSsize_t(index);
    Py_DECREF(index);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 0) {
        PyErr_Format(PyExc_ValueError, "size must be >= 0, got %zd", size);
        return NULL;
    }
    self = (PayloadBufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* Uninitialised: the caller writes every byte that take() returns whole. */
    self->bytes = PyBytes_FromStringAndSize(NULL, size);
    if (self->bytes == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
payload_buffer_dealloc(PayloadBufferObject *self)
{
    PyTypeObject *type = Py_TYPE(self);

    /* No view is left: each holds a reference to self. */
    Py_XDECREF(self->bytes);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* instances of a heap type own a reference to it */
}

static Py_ssize_t
payload_buffer_len(PayloadBufferObject *self)
{
    return self->taken ? 0 : PyBytes_GET_SIZE(self->bytes);
}

static int
payload_buffer_getbuffer(PayloadBufferObject *self, Py_buffer *view, int flags)
{
    if (self->taken) {
        PyErr_SetString(PyExc_BufferError, "the payload was taken");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->bytes),
                          PyBytes_GET_SIZE(self->bytes), 0, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
payload_buffer_releasebuffer(PayloadBufferObject *self, Py_buffer *view)
{
    self->exports--;
}

static PyObject *
payload_buffer_view(PayloadBufferObject *self, PyObject *unused)
{
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *
payload_buffer_take(PayloadBufferObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer mask = {0};
    PyObject *index, *result;
    Py_ssize_t nbytes, size;
    const uint8_t *src;

    if (!check_nargs("take", nargs, 2)) {
        return NULL;
    }
    if (self->taken) {
        PyErr_SetString(PyExc_BufferError, "the payload was taken");
        return NULL;
    }
    if ((index = PyNumber_Index(args[0])) == NULL) {
        return NULL;
    }
    nbytes = PyLong_AsSsize_t(index);
    Py_DECREF(index);
    if (nbytes == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return NULL;
        }
        PyErr_Clear();
        nbytes = -1; /* out of range either way */
    }
    size = PyBytes_GET_SIZE(self->bytes);
    if (nbytes < 0 || nbytes > size) {
        PyErr_Format(PyExc_ValueError, "nbytes must be in 0..%zd, got %S", size, args[0]);
        return NULL;
    }
    if (args[1] != Py_None && get_mask(args[1], &mask) < 0) {
        return NULL;
    }
    self->taken = 1;
    if (nbytes == size && self->exports == 0 && Py_REFCNT(self->bytes) == 1) {
        /* Every byte written, no view left to write more: hand it out. */
        result = self->bytes;
        self->bytes = NULL;
        if (mask.obj != NULL) {
            uint8_t *buf = (uint8_t *)PyBytes_AS_STRING(result);
            mask_copy(buf, buf, nbytes, mask.buf);
        }
        PyBuffer_Release(&mask);
        return result;
    }
    /* A view may still write into the storage (it stays alive with self):
       copy. */
    src = (const uint8_t *)PyBytes_AS_STRING(self->bytes);
    result = PyBytes_FromStringAndSize(NULL, nbytes);
    if (result != NULL) {
        if (mask.obj != NULL) {
            mask_copy((uint8_t *)PyBytes_AS_STRING(result), src, nbytes, mask.buf);
        }
        else if (nbytes > 0) {
            memcpy(PyBytes_AS_STRING(result), src, (size_t)nbytes);
        }
    }
    if (self->exports == 0) {
        Py_CLEAR(self->bytes);
    }
    PyBuffer_Release(&mask);
    return result;
}

static PyMethodDef payload_buffer_methods[] = {
    {"view", (PyCFunction)payload_buffer_view, METH_NOARGS,
     "view()\n--\n\nA writable memoryview of the whole buffer; release it when done."},
    {"take", (PyCFunction)(void (*)(void))payload_buffer_take, METH_FASTCALL,
     "take(nbytes, mask, /)\n--\n\nThe first nbytes, unmasked with mask unless None; "
     "empties the buffer."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot payload_buffer_slots[] = {
    {Py_tp_new, payload_buffer_new},
    {Py_tp_dealloc, payload_buffer_dealloc},
    {Py_tp_methods, payload_buffer_methods},
    {Py_sq_length, payload_buffer_len},
    {Py_bf_getbuffer, payload_buffer_getbuffer},
    {Py_bf_releasebuffer, payload_buffer_releasebuffer},
    {Py_tp_doc, "PayloadBuffer(size, /)\n--\n\nThe payload of one large frame, written in "
                "place as it arrives (see _fallback.PayloadBuffer)."},
    {0, NULL},
};

static PyType_Spec payload_buffer_spec = {
    .name = "rapidws.protocol._speedups.PayloadBuffer",
    .basicsize = sizeof(PayloadBufferObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = payload_buffer_slots,
};

/* ------------------------------------------------------------ module */

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask, /)\n--\n\nXOR data with the 4-byte mask repeated (RFC 6455 "
     "5.3)."},
    {"build_frame", (PyCFunction)(void (*)(void))build_frame, METH_FASTCALL,
     "build_frame(opcode, payload, fin, rsv1, mask, /)\n--\n\nOne whole frame (RFC 6455 "
     "5.2), masked when mask is not None."},
    {"parse_frames", (PyCFunction)(void (*)(void))parse_frames, METH_FASTCALL,
     "parse_frames(buf, frames, make_frame, expect_masked, rsv1_allowed, max_size, /)\n--\n\n"
     "Append every complete frame of buf to frames; return the end position, or ~pos "
     "for a header that breaks a rule."},
    {"parse_messages", (PyCFunction)(void (*)(void))parse_messages, METH_FASTCALL,
     "parse_messages(buf, messages, expect_masked, max_size, text, binary, /)\n--\n\n"
     "Whole unfragmented data frames at the start of buf as (payload, flag); see _fallback."},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
#ifdef RAPIDWS_AVX2
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    PyObject *type = PyType_FromModuleAndSpec(module, &payload_buffer_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "PayloadBuffer", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED}, /* no shared mutable state */
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rapidws.protocol._speedups",
    .m_doc = "C accelerator of rapidws.protocol; _fallback.py is its specification.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
