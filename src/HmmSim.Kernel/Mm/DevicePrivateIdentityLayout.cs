namespace HmmSim.Kernel;

/// <summary>How the offset field of a device-private swap entry is spent, per architecture, in the
/// global-offset redesign and under the (space #, space index) proposal. The entry's offset holds
/// SWP_PFN_BITS of number plus the migration entry's young and dirty bits (SWP_MIG_TOTAL_BITS); what
/// the PTE encoding has above that is free for a space id, as long as the identity still fits the
/// pfn field of an hmm_range_fault output word (below HMM_PFN_ORDER_SHIFT).</summary>
internal readonly record struct DevicePrivateIdentityLayout(
    int OffsetBits, int IndexBits, int SpaceShift, int SpaceBits)
{
    /// <summary>HMM_PFN_ORDER_SHIFT in the model's hmm_range_fault word (Hmm/HmmPfn.cs): the identity
    /// must stay below it.</summary>
    internal const int HmmPfnFieldBits = 51;

    /// <summary>The split for <paramref name="arch"/> with MAX_PHYSMEM_BITS of <paramref name="maxPhysmemBits"/>.</summary>
    public static DevicePrivateIdentityLayout For(Arch arch, int maxPhysmemBits)
    {
        // What survives the PTE round trip of the arch's swap-entry encoding (__swp_entry/__pte_to_swp_entry).
        int offsetBits = System.Numerics.BitOperations.Log2(arch.GenericMaxSwapfileSize);
        int indexBits = maxPhysmemBits - Arch.PageShift;
        int spaceShift = indexBits + 2;
        int spaceBits = Math.Max(0, Math.Min(offsetBits, HmmPfnFieldBits) - spaceShift);
        return new(offsetBits, indexBits, spaceShift, spaceBits);
    }

    /// <summary>The layout of the machine's own arch.</summary>
    public static DevicePrivateIdentityLayout For(Arch arch) => For(arch, arch.MaxPhysmemBits);

    /// <summary>Largest device memory one space (pagemap) can describe, in bytes.</summary>
    public ulong MaxBytesPerSpace => 1UL << (IndexBits + Arch.PageShift);
    /// <summary>How many spaces (pagemaps) can exist at once.</summary>
    public ulong MaxSpaces => 1UL << SpaceBits;
    /// <summary>The global-offset design's limit: all pagemaps together share 2^MAX_PHYSMEM_BITS bytes.</summary>
    public ulong GlobalLimitBytes => 1UL << (IndexBits + Arch.PageShift);
}
