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
        Root = root?.Root ?? this;
    }

    /// <summary>anon_vma->root: the first anon_vma of the fork family.</summary>
    public AnonVma Root { get; }

    /// <summary>anon_vma_lock_write / anon_vma_lock_read (the root's rwsem; exclusive in the model). Held
    /// across an rmap walk's page-table edits and across every change of a linked VMA's bounds.</summary>
    public Lock Lock => Root._rootLock;

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
                Retired = true;
        }
    }

    /// <summary>No VMA links to it any more: the kernel would free it here (put_anon_vma). The model keeps it,
    /// and its handle, until the machine goes: a folio that outlives its mappings (pinned, or being
    /// migrated) still names it in folio->mapping, which the kernel tolerates by checking folio_mapped
    /// before trusting the pointer, and a reused handle would name another anon_vma (docs/fidelity.md).</summary>
    public bool Retired { get; private set; }
}
