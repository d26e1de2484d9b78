namespace HmmSim.Kernel;

/// <summary>page->flags bits the model keeps (include/linux/page-flags.h names). Bits 24..31 of
/// <see cref="PageDesc.Flags"/> are not flags: they hold index bits 32..39 on a head or order-0
/// page, and the folio order on the first tail page.</summary>
[Flags]
internal enum PageFlags : uint
{
    None = 0,
    Locked = 1 << 0,
    Referenced = 1 << 1,
    Uptodate = 1 << 2,
    Dirty = 1 << 3,
    Lru = 1 << 4,
    Head = 1 << 5,
    Active = 1 << 6,
    SwapBacked = 1 << 7,
    Reserved = 1 << 8,
    /// <summary>A tail page of a large folio (the kernel marks this with bit 0 of compound_head).</summary>
    Tail = 1 << 9,
    AnonExclusive = 1 << 10,
    /// <summary>PageBuddy (a page type in the kernel): the head of a free buddy block.</summary>
    Buddy = 1 << 11,
    /// <summary>folio_test_anon: the kernel keeps this as PAGE_MAPPING_ANON in folio->mapping.</summary>
    Anon = 1 << 12,
    /// <summary>PageTable (a page type): a page-table page.</summary>
    Table = 1 << 13,
    Hugetlb = 1 << 14,
    /// <summary>The shared zero page or the huge zero folio.</summary>
    Zero = 1 << 15,
    Mlocked = 1 << 16,
    /// <summary>Allocated to the kernel for its own use (not mapped to user space).</summary>
    Slab = 1 << 17,
    LargeRmappable = 1 << 18,
    Writeback = 1 << 19,
    /// <summary>Model bit for <see cref="PgmapPlacement.PageUnion"/>: this ZONE_DEVICE page's pgmap word was
    /// overwritten by compound_head when it became a tail (prep_compound_tail), or zeroed by
    /// clear_compound_head since, so page->pgmap no longer names its pagemap. Never set otherwise.</summary>
    PgmapOverwritten = 1 << 20,
    HighByteMask = 0xFF00_0000,
}
