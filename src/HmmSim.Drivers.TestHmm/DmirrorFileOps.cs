namespace HmmSim.Drivers.TestHmm;

/// <summary>The dmirror character device's mmap (dmirror_fops_mmap): every page of the VMA gets a
/// zeroed kernel page inserted with vm_insert_page. The VMA has no fault handler: a page zapped
/// later (MADV_DONTNEED) faults with SIGBUS, as a mixed map without vm_ops->fault does.</summary>
internal sealed class DmirrorFileOps(KernelState kernel) : FileOperations, IVmOperations
{
    public VmFaultResult Fault(VmFault vmf) => VmFaultResult.Sigbus;

    public override Errno Mmap(Vma vma)
    {
        VmaSetOps(vma, this);
        for (ulong addr = VmaStart(vma); addr < VmaEnd(vma); addr += Arch.PageSize)
        {
            var page = AllocPages(kernel, 0);   // GFP_KERNEL | __GFP_ZERO: a fresh page reads as zeros
            if (page.IsNull)
                return Errno.ENOMEM;
            var err = VmInsertPage(vma, addr, page);
            FolioPut(PageFolio(page));   // the mapping keeps its own reference
            if (err != Errno.None)
                return err;
        }
        return Errno.None;
    }
}
