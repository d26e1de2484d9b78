namespace HmmSim.Tests.Concurrency;

/// <summary>The smallest form of the fork race, with real threads: the parent's pages live on the
/// device, a forked child reads all of them while the parent mprotects half of the range read-only and
/// back. The child's reads fault the shared device pages back through the rmap walk of the parent's
/// anon_vma, while the parent splits and merges its VMAs.</summary>
public class ForkMprotectRaceTests
{
    private const ulong PageSize = 4096;

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void ChildReadsOfMigratedPagesRacingParentMprotectSeeTheParentsData(DevicePrivateDesign design)
    {
        const int pages = 64, rounds = 60;
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = false });
        using var parent = m.CreateProcess();
        using var d = parent.OpenDmirror(0);
        var mirror = new byte[pages * PageSize];
        for (int round = 0; round < rounds; round++)
        {
            Assert.Equal(Errno.None, parent.Mmap(0, pages * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
            for (int i = 0; i < pages; i++)
                parent.WriteInt32(a + (ulong)i * PageSize, round * 1000 + i);
            var r = d.MigrateToDevice(a, pages, mirror);
            Assert.Equal(Errno.None, r.Error);
            using (var child = parent.Fork())
            {
                HmmDevice.ConcurrencyTests.RunThreads(
                    () =>
                    {
                        for (int i = 0; i < pages; i++)
                            Assert.Equal(round * 1000 + i, child.ReadInt32(a + (ulong)i * PageSize));
                    },
                    () =>
                    {
                        Assert.Equal(Errno.None, parent.Mprotect(a, pages / 2 * PageSize, Prot.Read));
                        Assert.Equal(Errno.None, parent.Mprotect(a, pages / 2 * PageSize, Prot.Read | Prot.Write));
                    });
            }
            for (int i = 0; i < pages; i++)
                Assert.Equal(round * 1000 + i, parent.ReadInt32(a + (ulong)i * PageSize));
            Assert.Equal(Errno.None, parent.Munmap(a, pages * PageSize));
        }
        m.CheckInvariants();
    }
}
