namespace HmmSim.Kernel;

/// <summary>The architecture seam: page-table entry formats and constants. Generic mm code only
/// ever handles raw entry values (pte_t, pmd_t, pud_t as ulong) through these methods, named as
/// the kernel's pgtable helpers are, so x86-64 and arm64 sit behind one interface.
/// Leaf entries at PMD level (THP, hugetlb) use the Pmd* methods; table entries at any level use
/// the *Table methods. Non-present non-none entries hold a swap entry in the arch's PTE form.</summary>
public abstract class Arch
{
    /// <summary>PAGE_SHIFT: log2 of the base page size (4 KiB on both architectures modelled).</summary>
    public const int PageShift = 12;
    /// <summary>PAGE_SIZE: the base page size in bytes (4096).</summary>
    public const ulong PageSize = 1UL << PageShift;
    /// <summary>PAGE_MASK: clears the offset within a page.</summary>
    public const ulong PageMask = ~(PageSize - 1);
    /// <summary>PTRS_PER_PTE (= PTRS_PER_PMD = PTRS_PER_PUD = PTRS_PER_PGD): entries in one page-table page.</summary>
    public const int PtrsPerTable = 512;
    /// <summary>PMD_SHIFT: log2 of the bytes one PMD entry maps (2 MiB).</summary>
    public const int PmdShift = 21;
    /// <summary>PUD_SHIFT: log2 of the bytes one PUD entry maps (1 GiB).</summary>
    public const int PudShift = 30;
    internal const int PgdirShift = 39;
    /// <summary>PMD_SIZE: bytes mapped by one PMD entry, the size of a PMD THP (2 MiB).</summary>
    public const ulong PmdSize = 1UL << PmdShift;
    /// <summary>PUD_SIZE: bytes mapped by one PUD entry (1 GiB).</summary>
    public const ulong PudSize = 1UL << PudShift;
    internal const ulong PgdirSize = 1UL << PgdirShift;
    /// <summary>The index mask of a 512-entry table (PTRS_PER_PTE - 1 and the like).</summary>
    internal const int PtrsPerTableMask = PtrsPerTable - 1;
    /// <summary>HPAGE_PMD_ORDER: the folio order of a PMD-mapped THP (9, i.e. 512 base pages).</summary>
    public const int HpagePmdOrder = PmdShift - PageShift;   // 9

    internal abstract Architecture Kind { get; }
    /// <summary>MAX_PHYSMEM_BITS: x86-64 4-level 46, arm64 48.</summary>
    internal abstract int MaxPhysmemBits { get; }
    /// <summary>SECTION_SIZE_BITS: 27 (128 MiB) on both.</summary>
    internal abstract int SectionSizeBits { get; }
    /// <summary>TASK_SIZE: the end of user virtual address space.</summary>
    internal abstract ulong TaskSize { get; }
    /// <summary>What the MMU translates for a user access at <paramref name="addr"/>: the address itself
    /// (x86-64 without LAM), or with arm64's top-byte-ignore tag removed (untagged_addr). The caller
    /// still checks the result against TASK_SIZE: anything above it is not a user address.</summary>
    internal virtual ulong UntaggedAddr(ulong addr) => addr;
    /// <summary>SWP_PFN_BITS = MAX_PHYSMEM_BITS - PAGE_SHIFT.</summary>
    internal int SwpPfnBits => MaxPhysmemBits - PageShift;
    /// <summary>Whether pfn_to_page is only valid where vmemmap covers (arm64: RAM and what the linear
    /// map covers); x86-64's vmemmap spans all of MAX_PHYSMEM_BITS.</summary>
    internal abstract bool VmemmapCoversOnlyLinearMap { get; }

    // --- protections -------------------------------------------------------------------
    /// <summary>vm_get_page_prot: the leaf protection bits for a VMA's flags.</summary>
    internal abstract ulong VmGetPageProt(VmFlags flags);

    // --- PTE leaves ----------------------------------------------------------------------
    internal abstract ulong PfnPte(Pfn pfn, ulong pgprot);
    internal abstract Pfn PtePfn(ulong pte);
    internal static bool PteNone(ulong pte) => pte == 0;
    /// <summary>pte_present: true also for PROT_NONE entries (x86 _PAGE_PROTNONE, arm64 PTE_PROT_NONE).</summary>
    internal abstract bool PtePresent(ulong pte);
    internal abstract bool PteProtNone(ulong pte);
    internal abstract bool PteWrite(ulong pte);
    internal abstract bool PteDirty(ulong pte);
    internal abstract bool PteYoung(ulong pte);
    internal abstract bool PteSoftDirty(ulong pte);
    internal abstract bool PteSpecial(ulong pte);
    internal abstract ulong PteMkwrite(ulong pte);
    internal abstract ulong PteWrprotect(ulong pte);
    internal abstract ulong PteMkdirty(ulong pte);
    internal abstract ulong PteMkclean(ulong pte);
    internal abstract ulong PteMkyoung(ulong pte);
    internal abstract ulong PteMkold(ulong pte);
    internal abstract ulong PteMksoftDirty(ulong pte);
    internal abstract ulong PteMkspecial(ulong pte);
    /// <summary>pte_modify: keep the PFN, accessed/dirty/soft-dirty/special, take the rest from pgprot.</summary>
    internal abstract ulong PteModify(ulong pte, ulong pgprot);

    // --- PMD leaves (THP, hugetlb) and tables -----------------------------------------------
    internal abstract ulong PfnPmd(Pfn pfn, ulong pgprot);   // a huge (leaf) PMD
    internal abstract Pfn PmdPfn(ulong pmd);
    internal abstract bool PmdPresent(ulong pmd);
    /// <summary>pmd_protnone: a PROT_NONE huge PMD, which pmd_present reports as present but the MMU does not translate.</summary>
    internal abstract bool PmdProtNone(ulong pmd);
    /// <summary>pmd_leaf / pmd_trans_huge: a present PMD mapping 2 MiB directly.</summary>
    internal abstract bool PmdLeaf(ulong pmd);
    internal abstract bool PmdWrite(ulong pmd);
    internal abstract bool PmdDirty(ulong pmd);
    internal abstract bool PmdYoung(ulong pmd);
    internal abstract bool PmdSoftDirty(ulong pmd);
    internal abstract ulong PmdMkwrite(ulong pmd);
    internal abstract ulong PmdWrprotect(ulong pmd);
    internal abstract ulong PmdMkdirty(ulong pmd);
    internal abstract ulong PmdMksoftDirty(ulong pmd);
    internal abstract ulong PmdMkyoung(ulong pmd);
    internal abstract ulong PmdMkold(ulong pmd);
    internal abstract ulong PmdModify(ulong pmd, ulong pgprot);

    /// <summary>An entry at PGD/PUD/PMD level pointing at the next-level table (pmd_populate and friends).</summary>
    internal abstract ulong MkTable(Pfn table);
    /// <summary>Whether a PGD/PUD/PMD entry points at a next-level table.</summary>
    internal abstract bool IsTable(ulong entry);
    internal abstract Pfn TablePfn(ulong entry);

    // --- swap entries in page tables ----------------------------------------------------
    /// <summary>swp_entry_to_pte: the arch's non-present encoding of a swap entry.</summary>
    internal abstract ulong SwpEntryToPte(SwapEntry entry);
    /// <summary>pte_to_swp_entry: strips the software bits (pte_swp_clear_flags) and decodes.</summary>
    internal abstract SwapEntry PteToSwpEntry(ulong pte);
    internal abstract bool PteSwpSoftDirty(ulong pte);
    internal abstract ulong PteSwpMksoftDirty(ulong pte);
    internal abstract bool PteSwpExclusive(ulong pte);
    internal abstract ulong PteSwpMkexclusive(ulong pte);
    internal abstract ulong PteSwpClearExclusive(ulong pte);
    internal abstract bool PteSwpUffdWp(ulong pte);
    internal abstract ulong PteSwpMkuffdWp(ulong pte);
    /// <summary>swp_entry_to_pmd / pmd_to_swp_entry for PMD-level migration and device-private entries.</summary>
    internal abstract ulong SwpEntryToPmd(SwapEntry entry);
    internal abstract SwapEntry PmdToSwpEntry(ulong pmd);
    internal abstract bool PmdSwpSoftDirty(ulong pmd);
    internal abstract ulong PmdSwpMksoftDirty(ulong pmd);
    internal abstract bool PmdSwpExclusive(ulong pmd);
    internal abstract ulong PmdSwpMkexclusive(ulong pmd);
    internal abstract bool PmdSwpUffdWp(ulong pmd);
    internal abstract ulong PmdSwpMkuffdWp(ulong pmd);

    /// <summary>generic_max_swapfile_size: how many offsets survive a trip through the arch's swap
    /// PTE form (swp_offset of the round-tripped swp_entry(0, ~0UL), plus one).</summary>
    internal ulong GenericMaxSwapfileSize => PteToSwpEntry(SwpEntryToPte(SwapEntry.Make(0, ~0UL))).Offset + 1;

    /// <summary>arch_max_swapfile_size: the generic value unless the arch lowers it.</summary>
    internal virtual ulong ArchMaxSwapfileSize => GenericMaxSwapfileSize;

    internal static Arch For(Architecture kind) => kind switch
    {
        Architecture.X86_64 => X86_64Arch.Instance,
        Architecture.Arm64 => Arm64Arch.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown architecture"),
    };
}
