using System.Runtime.InteropServices;

namespace HmmSim.Kernel;

/// <summary>The model's struct page: 24 bytes where the kernel spends 64. Large-folio fields live
/// in the first two tail pages, as the kernel keeps them in struct folio's tail words:
/// page[1].RefCount is _large_mapcount, page[1].Index _entire_mapcount, page[1]'s high flag byte
/// the order; page[2].RefCount is _pincount and page[2].Index _nr_pages_mapped.
/// Free buddy blocks link through their head page: Mapping = previous, Index = next pfn
/// (uint.MaxValue ends the list), Private = the block's order.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PageDesc
{
    public uint Flags;
    /// <summary>_refcount (heads and order-0 pages; 0 on tails except folio-field use above).</summary>
    public int RefCount;
    /// <summary>The page's own mapcount (the kernel's _mapcount + 1): PTE mappings of this page.</summary>
    public int MapCount;
    /// <summary>folio->mapping as a handle into the machine's mapping table (0 = none); on a tail
    /// page, the distance back to the head (compound_head).</summary>
    public uint Mapping;
    /// <summary>folio->index, low 32 bits (bits 32..39 in the high flag byte).</summary>
    public uint Index;
    /// <summary>Page data slot + 1 (0: never written, reads as zeros); on a free block, its order.</summary>
    public int Private;
}
