namespace HmmSim.Kernel;

/// <summary>struct anon_vma: the set of VMAs that may map the anonymous folios rmapped to it.
/// A folio faulted in a VMA is rmapped to that VMA's anon_vma; fork links the child's VMA into
/// every anon_vma of the parent's chain, so the rmap walk finds COW-shared folios in both.</summary>
internal sealed class AnonVma
{
    private readonly Lock _lock = new();
    private readonly List<Vma> _vmas = [];

    public AnonVma(Memmap memmap)
    {
        Handle = memmap.Mappings.Register(this);
        _memmap = memmap;
    }

    private readonly Memmap _memmap;
    public uint Handle { get; }
    /// <summary>The VMAs linked through an anon_vma_chain (the kernel's rb_root interval tree).</summary>
    public Vma[] Vmas()
    {
        lock (_lock)
            return [.. _vmas];
    }

    /// <summary>The rmap walk over this anon_vma's VMAs, under its lock (anon_vma_lock_read).</summary>
    public void CollectMappings(ulong index, ulong span, List<Rmap.Mapping> result)
    {
        lock (_lock)
        {
            foreach (var vma in _vmas)
                Rmap.AddIfOverlaps(result, vma, index, span);
        }
    }

    public void Link(Vma vma)
    {
        lock (_lock)
        {
            _vmas.Add(vma);
            vma.AnonVmaChain.Add(this);
        }
    }

    public void Unlink(Vma vma)
    {
        lock (_lock)
        {
            _vmas.Remove(vma);
            vma.AnonVmaChain.Remove(this);
            if (_vmas.Count == 0)
                Retired = true;
        }
    }

    /// <summary>No VMA links to it any more; its handle is released when no folio points at it either.</summary>
    public bool Retired { get; private set; }

    public void ReleaseHandle() => _memmap.Mappings.Unregister(Handle);
}
