namespace HmmSim.Kernel;

/// <summary>struct vm_area_struct: [Start, End) of one mm with one set of flags and one backing.</summary>
public sealed class Vma
{
    internal Vma(MmStruct mm, ulong start, ulong end, VmFlags flags, ulong pgoff, AddressSpace? file)
    {
        Mm = mm;
        Start = start;
        End = end;
        Flags = flags;
        PgOff = pgoff;
        File = file;
        PageProt = mm.Kernel.Arch.VmGetPageProt(flags);
    }

    internal MmStruct Mm { get; }
    internal ulong Start { get; set; }
    internal ulong End { get; set; }
    internal VmFlags Flags { get; set; }
    /// <summary>vm_pgoff: for a file, the offset in pages; for anon, the start's linear page index.</summary>
    internal ulong PgOff { get; set; }
    /// <summary>vm_page_prot, derived from <see cref="Flags"/>.</summary>
    internal ulong PageProt { get; private set; }
    /// <summary>vm_file's mapping (shmem, a hugetlbfs or device file); null for private anonymous memory.</summary>
    internal AddressSpace? File { get; }
    /// <summary>vma->anon_vma: where new anonymous folios of this VMA are rmapped; set on the first anon fault.</summary>
    internal AnonVma? AnonVma { get; set; }
    /// <summary>The anon_vma_chain: every anon_vma whose folios this VMA may map (its own and its ancestors').</summary>
    internal List<AnonVma> AnonVmaChain { get; } = [];
    /// <summary>vm_ops->fault and friends for special mappings (a device file); null for anon and shmem.</summary>
    internal IVmOperations? Ops { get; set; }

    internal ulong Length => End - Start;
    internal bool IsAnonymous => File is null && Ops is null;
    internal bool IsShared => (Flags & VmFlags.Shared) != 0;
    internal bool MayShare => (Flags & VmFlags.MayShare) != 0;
    internal bool IsHugetlb => (Flags & VmFlags.Hugetlb) != 0;
    /// <summary>is_cow_mapping: private and may be written.</summary>
    internal bool IsCowMapping => (Flags & (VmFlags.Shared | VmFlags.MayWrite)) == VmFlags.MayWrite;

    internal void SetFlags(VmFlags flags)
    {
        Flags = flags;
        PageProt = Mm.Kernel.Arch.VmGetPageProt(flags);
    }

    /// <summary>linear_page_index: the folio index an address of this VMA maps.</summary>
    internal ulong LinearPageIndex(ulong address) => PgOff + ((address - Start) >> Arch.PageShift);

    /// <summary>vma_address: where a page of a given index sits in this VMA, or ulong.MaxValue if outside.</summary>
    internal ulong AddressOf(ulong pgIndex)
    {
        if (pgIndex < PgOff)
            return ulong.MaxValue;
        ulong addr = Start + ((pgIndex - PgOff) << Arch.PageShift);
        return addr >= Start && addr < End ? addr : ulong.MaxValue;
    }

    internal bool Contains(ulong addr) => addr >= Start && addr < End;
    /// <summary>"vma START-END FLAGS" in hex, as /proc/pid/maps would show the range.</summary>
    public override string ToString() => $"vma {Start:x}-{End:x} {Flags}";
}

/// <summary>vm_operations_struct for special mappings.</summary>
public interface IVmOperations
{
    /// <summary>vm_operations_struct.fault: resolve a CPU fault at vmf.Address in a VMA the driver mapped
    /// (vm_insert_page or by returning a page); returns VM_FAULT_* bits.</summary>
    VmFaultResult Fault(VmFault vmf);
}
