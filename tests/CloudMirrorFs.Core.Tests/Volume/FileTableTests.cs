using CloudMirrorFs.Facets;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>The table of names on a state disk that stops taking writes.</summary>
[TestClass]
public sealed class FileTableTests
{
    /// <summary>
    /// A journal append that fails (the disk full, here for real) does not fail the change, which is made in memory
    /// already: the table stays right, the barrier fails while the disk refuses, and once there is room it writes the
    /// whole table, so a reopen finds every name. Before, the change threw after the table had taken it.
    /// </summary>
    [TestMethod]
    public async Task JournalOnAFullDisk_ChangesGoOn_BarrierFailsUntilThereIsRoom_ThenTheTableIsWhole()
    {
        using var disk = new SmallDisk(1);
        string state = Path.Combine(disk.Path, "state");
        Directory.CreateDirectory(state);
        var names = new List<string>();
        FileTable table = await FileTable.OpenAsync(state, null, null, false, default);
        try
        {
            FileNode dir = table.Add(table.Root, "d", NodeKind.Directory);
            table.Flush();
            string ballast = disk.Ballast();
            for (int i = 0; i < 64; i++) // 64 records of about 230 bytes: past what the journal's last page can hold
            {
                string name = $"{i:D3}-" + new string('n', 200);
                table.Add(dir, name, NodeKind.File);
                names.Add(name);
            }
            Assert.AreEqual(64, dir.Children!.Count, "every change made");
            Assert.IsTrue(table.HasUnflushed);
            Assert.ThrowsExactly<IOException>(table.Flush, "the barrier cannot return while the disk refuses");

            File.Delete(ballast);
            table.Flush();
            Assert.IsFalse(table.HasUnflushed);
        }
        finally
        {
            table.Dispose();
        }
        FileTable again = await FileTable.OpenAsync(state, null, null, false, default);
        try
        {
            foreach (string name in names)
            {
                Assert.IsNotNull(again.Lookup($"d/{name}"), name);
            }
        }
        finally
        {
            again.Dispose();
        }
    }
}
