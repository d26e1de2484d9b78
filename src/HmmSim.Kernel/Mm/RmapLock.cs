namespace HmmSim.Kernel;

/// <summary>The rmap lock a walk holds (mm/rmap.c rmap_walk_anon and rmap_walk_file): the anon_vma
/// root's lock or the mapping's i_mmap lock, held from the interval-tree lookup to the last page-table
/// edit, so no VMA of the walk can be split, merged, moved or unlinked under it.</summary>
internal static partial class Rmap
{
    /// <summary>The lock to hold across <see cref="Walk(Folio, List{Mapping})"/> and the edits that use its
    /// result; null for a folio with no rmap owner.</summary>
    public static Lock? WalkLock(Folio folio) => WalkLock(Owner(folio));

    /// <summary>The folio's rmap owner (its anon_vma or address_space), looked up once for both the lock
    /// and the walk under it.</summary>
    public static object? Owner(Folio folio) => folio.Memmap.Mappings.Get(folio.Mapping);

    /// <summary>The lock of an rmap owner from <see cref="Owner"/>.</summary>
    public static Lock? WalkLock(object? owner) => owner switch
    {
        AnonVma av => av.Lock,
        AddressSpace mapping => mapping.Lock,
        _ => null,
    };

    /// <summary><see cref="Walk(Folio, List{Mapping})"/> of <paramref name="owner"/> by a caller holding its
    /// <see cref="WalkLock(object?)"/>: the walk does not take it again.</summary>
    public static void WalkLocked(object? owner, Folio folio, List<Mapping> result) =>
        WalkRangeLocked(owner, folio.PgIndex, folio.Size, result);

    /// <summary><see cref="WalkLocked"/> for the index range [<paramref name="index"/>, + <paramref name="span"/>
    /// bytes) of a run of folios of one owner: every VMA that may map any of them.</summary>
    public static void WalkRangeLocked(object? owner, ulong index, ulong span, List<Mapping> result)
    {
        result.Clear();
        if (owner is AnonVma anonVma)
            anonVma.CollectMappingsLocked(index, span, result);
        else if (owner is AddressSpace mapping)
            mapping.CollectMappingsLocked(index, span, result);
    }

    /// <summary>vma_start_write's effect on the rmap: the lock of the VMA's anon_vma, held while its bounds
    /// change (__split_vma, vma_merge, vma_expand); null for a VMA with none.</summary>
    public static Lock? VmaBoundsLock(Vma vma) => vma.AnonVma?.Lock ?? vma.File?.Lock;
}
