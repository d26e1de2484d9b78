namespace HmmSim.Kernel;

/// <summary>The mm's VMAs in address order: a sorted array standing in for the maple tree.
/// Lookups are binary searches; callers hold mmap_lock (read to look, write to change).</summary>
internal sealed class VmaTree
{
    private readonly List<Vma> _vmas = [];

    public int Count => _vmas.Count;
    public IReadOnlyList<Vma> All => _vmas;

    /// <summary>find_vma: the first VMA ending above <paramref name="addr"/>.</summary>
    public Vma? FindVma(ulong addr)
    {
        int i = IndexOfFirstEndingAbove(addr);
        return i < _vmas.Count ? _vmas[i] : null;
    }

    /// <summary>vma_lookup: the VMA containing <paramref name="addr"/>.</summary>
    public Vma? Lookup(ulong addr)
    {
        var v = FindVma(addr);
        return v is not null && v.Start <= addr ? v : null;
    }

    public int IndexOfFirstEndingAbove(ulong addr)
    {
        int lo = 0, hi = _vmas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_vmas[mid].End <= addr)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    public int IndexOf(Vma vma)
    {
        int i = IndexOfFirstEndingAbove(vma.Start);
        return i < _vmas.Count && ReferenceEquals(_vmas[i], vma) ? i : -1;
    }

    public Vma? Prev(Vma vma)
    {
        int i = IndexOf(vma);
        return i > 0 ? _vmas[i - 1] : null;
    }

    public Vma? Next(Vma vma)
    {
        int i = IndexOf(vma);
        return i >= 0 && i + 1 < _vmas.Count ? _vmas[i + 1] : null;
    }

    /// <summary>The VMAs intersecting [start, end), in order.</summary>
    public List<Vma> Range(ulong start, ulong end)
    {
        var list = new List<Vma>();
        for (int i = IndexOfFirstEndingAbove(start); i < _vmas.Count && _vmas[i].Start < end; i++)
            list.Add(_vmas[i]);
        return list;
    }

    public void Insert(Vma vma)
    {
        int i = IndexOfFirstEndingAbove(vma.Start);
        if (i < _vmas.Count && _vmas[i].Start < vma.End)
            ThrowHelper.KernelBug($"vma_tree: inserting {vma} over {_vmas[i]}");
        _vmas.Insert(i, vma);
    }

    public void Remove(Vma vma)
    {
        int i = IndexOf(vma);
        if (i < 0)
            ThrowHelper.KernelBug($"vma_tree: removing {vma} that is not in the tree");
        _vmas.RemoveAt(i);
    }

    public void Clear() => _vmas.Clear();
}
