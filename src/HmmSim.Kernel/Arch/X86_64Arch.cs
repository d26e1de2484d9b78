namespace HmmSim.Kernel;

/// <summary>x86-64 with 4-level paging (arch/x86/include/asm/pgtable*.h). Modelled without
/// shadow stacks (no _PAGE_SAVED_DIRTY), without memory encryption (_PAGE_ENC is 0) and on a CPU
/// without the L1TF bug, with CONFIG_MEM_SOFT_DIRTY and CONFIG_HAVE_ARCH_USERFAULTFD_WP on.</summary>
internal sealed class X86_64Arch : Arch
{
    public static readonly Arch Instance = new X86_64Arch();

    private X86_64Arch() { }

    // _PAGE_BIT_* and the masks built from them.
    public const ulong PagePresent = 1UL << 0;
    public const ulong PageRw = 1UL << 1;
    public const ulong PageUser = 1UL << 2;
    public const ulong PagePwt = 1UL << 3;
    public const ulong PagePcd = 1UL << 4;
    public const ulong PageAccessed = 1UL << 5;
    public const ulong PageDirty = 1UL << 6;
    public const ulong PagePse = 1UL << 7;
    public const ulong PageGlobal = 1UL << 8;
    public const ulong PageSpecial = 1UL << 9;      // _PAGE_SOFTW1
    public const ulong PageUffdWp = 1UL << 10;      // _PAGE_SOFTW2
    public const ulong PageSoftDirty = 1UL << 11;   // _PAGE_SOFTW3
    public const ulong PagePatLarge = 1UL << 12;
    public const ulong PageNx = 1UL << 63;
    /// <summary>_PAGE_PROTNONE: the GLOBAL bit, meaningful only while PRESENT is clear.</summary>
    public const ulong PageProtNone = PageGlobal;

    // Non-present (swap) software bits.
    public const ulong PageSwpSoftDirty = PageRw;   // bit 1
    public const ulong PageSwpUffdWp = PageUser;    // bit 2
    public const ulong PageSwpExclusive = PagePwt;  // bit 3

    public const int PhysicalMaskShift = 52;        // __PHYSICAL_MASK_SHIFT
    /// <summary>PTE_PFN_MASK: bits 12..51.</summary>
    public const ulong PtePfnMask = ((1UL << PhysicalMaskShift) - 1) & ~(PageSize - 1);
    /// <summary>PHYSICAL_PMD_PAGE_MASK: bits 21..51.</summary>
    public const ulong PmdPfnMask = ((1UL << PhysicalMaskShift) - 1) & ~(PmdSize - 1);

    /// <summary>_PAGE_CHG_MASK: what pte_modify keeps.</summary>
    public const ulong PageChgMask = PtePfnMask | PagePcd | PagePwt | PageSpecial | PageAccessed | PageDirty | PageSoftDirty | PageUffdWp;
    /// <summary>_HPAGE_CHG_MASK: what pmd_modify keeps.</summary>
    public const ulong HpageChgMask = PageChgMask | PagePse | PagePatLarge;

    // Protections (pgtable_types.h) and protection_map (arch/x86/mm/pgprot.c).
    public const ulong PageNone = PageProtNone | PageAccessed;
    public const ulong PageShared = PagePresent | PageRw | PageUser | PageAccessed | PageNx;
    public const ulong PageSharedExec = PagePresent | PageRw | PageUser | PageAccessed;
    public const ulong PageCopyNoexec = PagePresent | PageUser | PageAccessed | PageNx;
    public const ulong PageCopyExec = PagePresent | PageUser | PageAccessed;
    public const ulong PageCopy = PageCopyNoexec;
    public const ulong PageReadonly = PagePresent | PageUser | PageAccessed | PageNx;
    public const ulong PageReadonlyExec = PagePresent | PageUser | PageAccessed;
    /// <summary>_PAGE_TABLE: a user page-table entry pointing at the next level.</summary>
    public const ulong PageTable = PagePresent | PageRw | PageUser | PageAccessed | PageDirty;

    // Swap PTE layout (pgtable_64.h): type in bits 59..63, inverted offset in bits 9..58.
    public const int SwpTypeBits = 5;
    public const int SwpOffsetFirstBit = 8 + 1;     // _PAGE_BIT_PROTNONE + 1
    public const int SwpOffsetShift = SwpOffsetFirstBit + SwpTypeBits;

    private static readonly ulong[] _protectionMap =
    [
        PageNone, PageReadonly, PageCopy, PageCopy,                                   // private: ---, r--, -w-, rw-
        PageReadonlyExec, PageReadonlyExec, PageCopyExec, PageCopyExec,               // private: --x, r-x, -wx, rwx
        PageNone, PageReadonly, PageShared, PageShared,                               // shared
        PageReadonlyExec, PageReadonlyExec, PageSharedExec, PageSharedExec,
    ];

    internal override Architecture Kind => Architecture.X86_64;
    internal override int MaxPhysmemBits => 46;
    internal override int SectionSizeBits => 27;
    internal override ulong TaskSize => 0x7ffffffff000UL;
    internal override bool VmemmapCoversOnlyLinearMap => false;

    internal override ulong VmGetPageProt(VmFlags flags) =>
        _protectionMap[(int)((ulong)flags & (ulong)(VmFlags.Read | VmFlags.Write | VmFlags.Exec | VmFlags.Shared))];

    // --- L1TF inversion (pgtable-invert.h) ------------------------------------------------
    /// <summary>__pte_needs_invert: a non-zero entry with PRESENT clear keeps its PFN inverted.</summary>
    private static bool NeedsInvert(ulong val) => val != 0 && (val & PagePresent) == 0;
    private static ulong ProtnoneMask(ulong val) => NeedsInvert(val) ? ~0UL : 0UL;
    private static ulong FlipProtnoneGuard(ulong oldval, ulong val, ulong mask) =>
        NeedsInvert(oldval) != NeedsInvert(val) ? (val & ~mask) | (~val & mask) : val;

    // --- PTE leaves ----------------------------------------------------------------------
    internal override ulong PfnPte(Pfn pfn, ulong pgprot)
    {
        ulong phys = pfn.Value << PageShift;
        phys ^= ProtnoneMask(pgprot);
        return (phys & PtePfnMask) | pgprot;
    }

    internal override Pfn PtePfn(ulong pte) => new(((pte ^ ProtnoneMask(pte)) & PtePfnMask) >> PageShift);
    internal override bool PtePresent(ulong pte) => (pte & (PagePresent | PageProtNone)) != 0;
    internal override bool PteProtNone(ulong pte) => (pte & (PagePresent | PageProtNone)) == PageProtNone;
    internal override bool PteWrite(ulong pte) => (pte & PageRw) != 0;
    internal override bool PteDirty(ulong pte) => (pte & PageDirty) != 0;
    internal override bool PteYoung(ulong pte) => (pte & PageAccessed) != 0;
    internal override bool PteSoftDirty(ulong pte) => (pte & PageSoftDirty) != 0;
    internal override bool PteSpecial(ulong pte) => (pte & PageSpecial) != 0;
    internal override ulong PteMkwrite(ulong pte) => pte | PageRw;
    internal override ulong PteWrprotect(ulong pte) => pte & ~PageRw;
    internal override ulong PteMkdirty(ulong pte) => pte | PageDirty | PageSoftDirty;
    internal override ulong PteMkclean(ulong pte) => pte & ~PageDirty;
    internal override ulong PteMkyoung(ulong pte) => pte | PageAccessed;
    internal override ulong PteMkold(ulong pte) => pte & ~PageAccessed;
    internal override ulong PteMksoftDirty(ulong pte) => pte | PageSoftDirty;
    internal override ulong PteMkspecial(ulong pte) => pte | PageSpecial;

    internal override ulong PteModify(ulong pte, ulong pgprot)
    {
        ulong val = (pte & PageChgMask) | (pgprot & ~PageChgMask);
        return FlipProtnoneGuard(pte, val, PtePfnMask);
    }

    // --- PMD leaves and tables -----------------------------------------------------------
    internal override ulong PfnPmd(Pfn pfn, ulong pgprot)
    {
        ulong prot = pgprot | PagePse;
        ulong phys = pfn.Value << PageShift;
        phys ^= ProtnoneMask(prot);
        return (phys & PmdPfnMask) | prot;
    }

    internal override Pfn PmdPfn(ulong pmd)
    {
        ulong mask = (pmd & PagePse) != 0 ? PmdPfnMask : PtePfnMask;
        return new(((pmd ^ ProtnoneMask(pmd)) & mask) >> PageShift);
    }

    /// <summary>pmd_present: PRESENT, PROTNONE or PSE (a PMD being split keeps PSE with PRESENT clear).</summary>
    internal override bool PmdPresent(ulong pmd) => (pmd & (PagePresent | PageProtNone | PagePse)) != 0;
    internal override bool PmdProtNone(ulong pmd) => (pmd & (PagePresent | PageProtNone)) == PageProtNone;
    internal override bool PmdLeaf(ulong pmd) => PmdPresent(pmd) && (pmd & PagePse) != 0;
    internal override bool PmdWrite(ulong pmd) => (pmd & PageRw) != 0;
    internal override bool PmdDirty(ulong pmd) => (pmd & PageDirty) != 0;
    internal override bool PmdYoung(ulong pmd) => (pmd & PageAccessed) != 0;
    internal override bool PmdSoftDirty(ulong pmd) => (pmd & PageSoftDirty) != 0;
    internal override ulong PmdMkwrite(ulong pmd) => pmd | PageRw;
    internal override ulong PmdWrprotect(ulong pmd) => pmd & ~PageRw;
    internal override ulong PmdMkdirty(ulong pmd) => pmd | PageDirty | PageSoftDirty;
    internal override ulong PmdMksoftDirty(ulong pmd) => pmd | PageSoftDirty;
    internal override ulong PmdMkyoung(ulong pmd) => pmd | PageAccessed;
    internal override ulong PmdMkold(ulong pmd) => pmd & ~PageAccessed;

    internal override ulong PmdModify(ulong pmd, ulong pgprot)
    {
        ulong val = (pmd & HpageChgMask) | (pgprot & ~HpageChgMask);
        return FlipProtnoneGuard(pmd, val, PmdPfnMask);
    }

    internal override ulong MkTable(Pfn table) => ((table.Value << PageShift) & PtePfnMask) | PageTable;
    internal override bool IsTable(ulong entry) => (entry & PagePresent) != 0 && (entry & PagePse) == 0;
    internal override Pfn TablePfn(ulong entry) => new((entry & PtePfnMask) >> PageShift);

    // --- swap entries ----------------------------------------------------------------------
    /// <summary>__swp_entry: type in the top five bits, the offset inverted and shifted up so it
    /// starts just above the PROTNONE bit.</summary>
    private static ulong ArchSwpEntry(uint type, ulong offset) =>
        (~offset << SwpOffsetShift >> SwpTypeBits) | ((ulong)type << (64 - SwpTypeBits));

    private static uint ArchSwpType(ulong val) => (uint)(val >> (64 - SwpTypeBits));
    private static ulong ArchSwpOffset(ulong val) => ~val << SwpTypeBits >> SwpOffsetShift;

    internal override ulong SwpEntryToPte(SwapEntry entry) => ArchSwpEntry(entry.Type, entry.Offset);

    internal override SwapEntry PteToSwpEntry(ulong pte)
    {
        pte &= ~(PageSwpSoftDirty | PageSwpUffdWp | PageSwpExclusive);   // pte_swp_clear_flags
        return SwapEntry.Make(ArchSwpType(pte), ArchSwpOffset(pte));
    }

    internal override bool PteSwpSoftDirty(ulong pte) => (pte & PageSwpSoftDirty) != 0;
    internal override ulong PteSwpMksoftDirty(ulong pte) => pte | PageSwpSoftDirty;
    internal override bool PteSwpExclusive(ulong pte) => (pte & PageSwpExclusive) != 0;
    internal override ulong PteSwpMkexclusive(ulong pte) => pte | PageSwpExclusive;
    internal override ulong PteSwpClearExclusive(ulong pte) => pte & ~PageSwpExclusive;
    internal override bool PteSwpUffdWp(ulong pte) => (pte & PageSwpUffdWp) != 0;
    internal override ulong PteSwpMkuffdWp(ulong pte) => pte | PageSwpUffdWp;

    internal override ulong SwpEntryToPmd(SwapEntry entry) => ArchSwpEntry(entry.Type, entry.Offset);

    internal override SwapEntry PmdToSwpEntry(ulong pmd)
    {
        pmd &= ~(PageSwpSoftDirty | PageSwpUffdWp | PageSwpExclusive);
        return SwapEntry.Make(ArchSwpType(pmd), ArchSwpOffset(pmd));
    }

    internal override bool PmdSwpSoftDirty(ulong pmd) => (pmd & PageSwpSoftDirty) != 0;
    internal override ulong PmdSwpMksoftDirty(ulong pmd) => pmd | PageSwpSoftDirty;
    internal override bool PmdSwpExclusive(ulong pmd) => (pmd & PageSwpExclusive) != 0;
    internal override ulong PmdSwpMkexclusive(ulong pmd) => pmd | PageSwpExclusive;
    internal override bool PmdSwpUffdWp(ulong pmd) => (pmd & PageSwpUffdWp) != 0;
    internal override ulong PmdSwpMkuffdWp(ulong pmd) => pmd | PageSwpUffdWp;
}
