namespace HmmSim.Kernel;

/// <summary>struct file_operations, the part the model's character devices need: a driver's mmap.
/// The kernel sets up the VMA (mmap_region) and hands it to the driver; if the driver fails, the
/// kernel unmaps what it set up.</summary>
public abstract class FileOperations
{
    /// <summary>f_op->mmap: populate or prepare <paramref name="vma"/>; an errno fails the mmap.</summary>
    public abstract Errno Mmap(Vma vma);
}
