namespace HmmSim.Kernel;

/// <summary>swp_entry_t (and softleaf_t, which the kernel typedefs to it): the arch-independent
/// form, type in bits 58..62 and offset in bits 0..57. The PTE form is the arch's business.</summary>
internal readonly record struct SwapEntry(ulong Val)
{
    public const int MaxSwapfilesShift = 5;
    public const int TypeShift = 63 - MaxSwapfilesShift;            // SWP_TYPE_SHIFT = 58
    public const ulong OffsetMask = (1UL << TypeShift) - 1;         // SWP_OFFSET_MASK

    public static SwapEntry Make(uint type, ulong offset) => new(((ulong)type << TypeShift) | (offset & OffsetMask));
    public uint Type => (uint)(Val >> TypeShift);                   // swp_type
    public ulong Offset => Val & OffsetMask;                        // swp_offset
    public bool IsNone => Val == 0;
    public override string ToString() => $"swp(type {Type}, off 0x{Offset:x})";
}
