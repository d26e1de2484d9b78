namespace HmmSim.Kernel;

/// <summary>struct anon_vma: the set of VMAs that may map the anonymous folios rmapped to it.
/// A folio faulted in a VMA is rmapped to that VMA's anon_vma; fork links the child's VMA into
/// every anon_vma of the parent's chain, so the rmap walk finds COW-shared folios in both.</summary>
internal sealed class AnonVma
{
    private readonly Lock _rootLock = new();
    private readonly List<Vma> _vmas = [];

    /// <summary>A new anon_vma; <paramref name="root"/> is the parent's root when anon_vma_fork makes it,
    /// so the whole fork family shares one lock, as anon_vma->root->rwsem is shared in the kernel.</summary>
    public AnonVma(Memmap memmap, AnonVma? root = null)
    {
        Handle = memmap.Mappings.Register(this);
        _mappings = memmap.Mappings;
        Root = root?.Root ?? this;
    }

    /// <summary>anon_vma->root: the first anon_vma of the fork family.</summary>
    public AnonVma Root { get; }

    /// <summary>anon_vma_lock_write / anon_vma_lock_read (the root's rwsem; exclusive in the model). Held
    /// across an rmap walk's page-table edits and across every change of a linked VMA's bounds.</summary>
    public Lock Lock => Root._rootLock;

    private readonly MappingTable _mappings;
    public uint Handle { get; }
    /// <summary>The VMAs linked through an anon_vma_chain (the kernel's rb_root interval tree).</summary>
    public Vma[] Vmas()
    {
        lock (Lock)
            return [.. _vmas];
    }

    /// <summary>The rmap walk over this anon_vma's VMAs, for a caller holding <see cref="Lock"/> (anon_vma_lock_read).</summary>
    public void CollectMappingsLocked(ulong index, ulong span, List<Rmap.Mapping> result)
    {
        foreach (var vma in _vmas)
            Rmap.AddIfOverlaps(result, vma, index, span);
    }

    public void Link(Vma vma)
    {
        lock (Lock)
        {
            if (Retired)
                ThrowHelper.KernelBug($"anon_vma {Handle}: linking {vma} to an anon_vma whose last VMA has gone (use after free)");
            _vmas.Add(vma);
            vma.AnonVmaChain.Add(this);
        }
    }

    public void Unlink(Vma vma)
    {
        lock (Lock)
        {
            _vmas.Remove(vma);
            vma.AnonVmaChain.Remove(this);
            if (_vmas.Count == 0)
            {
                // put_anon_vma: the last VMA has gone, and the anon_vma with it. A folio that outlives its
                // mappings (pinned, or mid-migration) may still name it in folio->mapping; the kernel
                // tolerates the stale pointer by checking folio_mapped before trusting it, and the model
                // by never reusing the handle: it resolves to no owner, and an rmap walk finds nothing.
                Retired = true;
                _mappings.Retire(Handle);
            }
        }
    }

    /// <summary>No VMA links to it any more: freed (put_anon_vma), its handle no longer resolves.</summary>
    public bool Retired { get; private set; }
}
