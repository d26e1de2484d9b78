namespace HmmSim.Kernel;

/// <summary>struct address_space: a file's page cache (i_pages) and the VMAs mapping it (i_mmap).</summary>
internal sealed class AddressSpace
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Folio> _pages = [];
    private readonly List<Vma> _mmap = [];

    public AddressSpace(Memmap memmap, ulong size, bool hugetlb = false)
    {
        Handle = memmap.Mappings.Register(this);
        Size = size;
        IsHugetlb = hugetlb;
    }

    public uint Handle { get; }
    /// <summary>References from open files and VMAs (struct file refcounts, folded per inode).</summary>
    public long FileRefs;
    /// <summary>i_size.</summary>
    public ulong Size { get; set; }
    public bool IsHugetlb { get; }
    public Lock Lock => _lock;

    /// <summary>filemap_get_folio: the folio caching page <paramref name="index"/>, or null.</summary>
    public Folio? Get(ulong index)
    {
        lock (_lock)
            return _pages.TryGetValue(index, out var f) ? f : null;
    }

    /// <summary>Adds a folio to the cache unless one is there already; returns the one that is.</summary>
    public Folio AddOrGet(ulong index, Folio folio)
    {
        lock (_lock)
        {
            if (_pages.TryGetValue(index, out var existing))
                return existing;
            _pages[index] = folio;
            return folio;
        }
    }

    public bool Remove(ulong index, out Folio folio)
    {
        lock (_lock)
            return _pages.Remove(index, out folio);
    }

    public KeyValuePair<ulong, Folio>[] Entries()
    {
        lock (_lock)
            return [.. _pages];
    }

    public int CachedFolios
    {
        get
        {
            lock (_lock)
                return _pages.Count;
        }
    }

    public void MmapAdd(Vma vma)
    {
        lock (_lock)
            _mmap.Add(vma);
    }

    public void MmapRemove(Vma vma)
    {
        lock (_lock)
            _mmap.Remove(vma);
    }

    /// <summary>The rmap walk over i_mmap, for a caller holding the mapping's <see cref="Lock"/> (i_mmap_lock_read).</summary>
    public void CollectMappingsLocked(ulong index, ulong span, List<Rmap.Mapping> result)
    {
        foreach (var vma in _mmap)
            Rmap.AddIfOverlaps(result, vma, index, span);
    }

    public Vma[] MmapVmas()
    {
        lock (_lock)
            return [.. _mmap];
    }
}
