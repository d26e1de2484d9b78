namespace HmmSim.Tests.Contract;

/// <summary>The public contract (docs/api.md) as user code is written against it: each member with its
/// exact signature, so a change that breaks callers fails to compile here, and the calls still do what
/// the contract says.</summary>
public class ContractTests
{
    [Fact]
    public void TheContractCompilesAndRunsAsWritten()
    {
        var config = new MachineConfig
        {
            Architecture = Architecture.X86_64,
            PhysicalAddressBits = 46,
            RamBytes = 8UL << 30,
            PciWindows = [],
            DevicePrivateDesign = DevicePrivateDesign.DeviceAddressSpace,
            CheckInvariants = true,
            PciTopology = PciTopology.CommonSwitch,
            Seed = 1,
        };
        using Machine machine = new(config);
        Assert.Same(config, machine.Config);
        Process process = machine.CreateProcess();
        using ShmemFile file = machine.CreateFile(1 << 20);
        Assert.Equal(1UL << 20, file.Size);
        Assert.Equal(Errno.None, file.Pwrite([1, 2, 3], 0, out ulong written));
        Assert.Equal(3UL, written);
        Span<byte> three = stackalloc byte[3];
        Assert.Equal(Errno.None, file.Pread(three, 0, out ulong read));
        Assert.Equal(3UL, read);

        Errno err = process.Mmap(0, 1 << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong addr);
        Assert.Equal(Errno.None, err);
        Assert.Equal(Errno.None, process.Mmap(0, 1 << 20, Prot.Read, MapFlags.Shared, out ulong fileMap, file, 0));
        Assert.Equal(1, process.ReadInt32(fileMap) & 0xFF);
        process.WriteInt32(addr, 42);
        Assert.Equal(42, process.ReadInt32(addr));
        process.Write(addr + 8, [7]);
        Span<byte> one = stackalloc byte[1];
        process.Read(addr + 8, one);
        Assert.Equal(7, one[0]);
        Assert.NotEqual(0UL, process.PagemapEntry(addr) & (1UL << 63));
        Assert.Equal(Errno.None, process.Madvise(addr, 1 << 20, Advice.Normal));
        Assert.Equal(Errno.None, process.Mprotect(addr, 1 << 20, Prot.Read | Prot.Write));
        Assert.Equal(Errno.None, process.Mremap(addr, 1 << 20, 1 << 20, MremapFlags.None, 0, out ulong remapped));
        Assert.Equal(addr, remapped);

        using (Dmirror gpu = process.OpenDmirror(0))
        {
            var mirror = new byte[1 << 20];
            Assert.Equal(Errno.None, gpu.Read(addr, 256, mirror).Error);
            Assert.Equal(42, BitConverter.ToInt32(mirror));
            Assert.Equal(Errno.None, gpu.Write(addr, 256, mirror).Error);
            DmirrorResult r = gpu.MigrateToDevice(addr, 256, mirror);
            Assert.Equal(new DmirrorResult(Errno.None, 256, 0), r);
            Assert.Equal(42, BitConverter.ToInt32(mirror));
            var prot = new byte[256];
            Assert.Equal(Errno.None, gpu.Snapshot(addr, 256, prot).Error);
            Assert.Equal(Errno.None, gpu.MigrateToSystem(addr, 256).Error);
            Assert.Equal(Errno.None, gpu.Exclusive(addr, 1, mirror).Error);
            Assert.Equal(Errno.EPERM, gpu.CheckExclusive(addr, 1).Error);
            Assert.Equal(Errno.None, gpu.SetFlags(DmirrorFlags.FailAlloc).Error);
            Assert.Equal(Errno.None, gpu.Release().Error);
        }
        Assert.Equal(42, process.ReadInt32(addr));

        Process child = process.Fork();
        Assert.NotEqual(process.Pid, child.Pid);
        child.Dispose();
        Assert.Equal(Errno.None, process.Munmap(addr, 1 << 20));
        Assert.Throws<SegmentationFaultException>(() => process.ReadInt32(addr));
        var segv = Assert.Throws<SegmentationFaultException>(() => process.WriteInt32(addr, 1));
        Assert.Equal(addr, segv.Address);

        IReadOnlyDictionary<string, long> vmstat = machine.VmStat;
        Assert.True(vmstat.ContainsKey("nr_free_pages"));
        Assert.Contains("System RAM", machine.Iomem(), StringComparison.Ordinal);
        IReadOnlyList<string> dmesg = machine.Dmesg();
        Assert.NotEmpty(dmesg);
        machine.CheckInvariants();
        process.Dispose();
    }

    [Fact]
    public void EnumValuesAreTheLinuxValues()
    {
        Assert.Equal(22, (int)Errno.EINVAL);
        Assert.Equal(95, (int)Errno.EOPNOTSUPP);
        Assert.Equal(0x20, (int)MapFlags.Anonymous);
        Assert.Equal(0x100000, (int)MapFlags.FixedNoReplace);
        Assert.Equal(25, (int)Advice.Collapse);
        Assert.Equal(4, (int)MremapFlags.DontUnmap);
        Assert.Equal(0x30, (int)DmirrorProt.DevPrivateRemote);
        Assert.Equal(0xFF, (int)DmirrorProt.Error);
        // The kernel's own errno (what drivers return) has the same values as the contract's.
        foreach (var e in Enum.GetValues<Errno>())
            Assert.Equal(e.ToString(), ((HmmSim.Kernel.Errno)(int)e).ToString());
    }

    [Fact]
    public void ExceptionsCarryWhatTheContractSays()
    {
        KernelBugException bug = new("x");
        Assert.IsAssignableFrom<Exception>(bug);
        ErrnoException errno = new(Errno.ENOENT);
        Assert.Equal(Errno.ENOENT, errno.Errno);
        using var machine = new Machine();
        using var p = machine.CreateProcess();
        Assert.Equal(Errno.ENOENT, Assert.Throws<ErrnoException>(() => p.OpenDmirror(9)).Errno);
    }
}
