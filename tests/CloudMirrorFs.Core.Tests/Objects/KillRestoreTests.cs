using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Volume;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// A writer killed with SIGKILL while it uploads to a folder object store; then the remote alone (no restart, no
/// local state) is restored: the tree must be one the writer passed through (DESIGN promise 3).
/// </summary>
[TestClass]
public sealed class KillRestoreTests
{
    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task WriterKilledDuringUploads_RestoreFromRemoteAlone_IsAStateTheWriterLogged()
    {
        int checkedRounds = 0;
        for (int round = 0; round < 6; round++)
        {
            using var dir = new TempDir($"killrestore{round}");
            string state = dir.Sub("state"), local = dir.Sub("local"), remote = dir.Sub("remote");
            string log = Path.Combine(dir.Path, "log");
            await CrashTests.RunAndKillAsync(state, local, remote, 64L << 20, log, seed: round, killAfterMs: 400 + round * 250,
                replicate: true, remoteKind: "folder", mode: "generations");

            var options = CrashTests.Options(state, local, remote, 64L << 20, "folder");
            string target = Path.Combine(dir.Path, "restored");
            RemoteRestore.Result r;
            try
            {
                r = await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(options.Facets[1]), target, null, null, default);
            }
            catch (MirrorException e) when (e.Error == MirrorError.NotFound)
            {
                Console.WriteLine($"round {round}: {e.Message}; log lines {File.ReadAllLines(log).Length}; remote: {string.Join(", ", Directory.GetFileSystemEntries(remote, "*", SearchOption.AllDirectories).Take(8))}");
                continue; // killed before the first commit: nothing to restore yet is a valid state too
            }
            string file = Path.Combine(target, "gen.bin");
            if (r.Commit == 0 || !File.Exists(file))
            {
                Console.WriteLine($"round {round}: commit {r.Commit}, files {r.Files}; log lines {File.ReadAllLines(log).Length}");
                continue;
            }
            byte[] bytes = File.ReadAllBytes(file);
            int size = CrashTests.BlockSizeForTests;
            int blocks = bytes.Length / size;
            Assert.AreEqual(0, bytes.Length % size, $"round {round}: gen.bin ends inside a block ({bytes.Length} bytes)");
            var values = Enumerable.Range(0, 8).Select(b => b < blocks ? bytes[b * size] : 0).ToArray();
            for (int b = 0; b < blocks; b++)
            {
                Assert.IsTrue(bytes.AsSpan(b * size, size).IndexOfAnyExcept(bytes[b * size]) < 0, $"round {round}: block {b} is torn");
            }
            int g = values[0];
            int cut = values.TakeWhile(x => x == g).Count();
            Assert.IsTrue(values.Skip(cut).All(x => x == g - 1), $"round {round}: restored generations [{string.Join(",", values)}] are not a state the writer passed through");
            // And the writer had acknowledged at least that much before the kill.
            string[] acked = File.ReadAllLines(log).Where(l => l.StartsWith("G ", StringComparison.Ordinal)).ToArray();
            Assert.IsTrue(acked.Contains($"G {g} {cut - 1}") || (cut == 8 && acked.Contains($"G {g} 7")) || g == 0,
                $"round {round}: the image holds generation {g} up to block {cut - 1}, which the writer never acknowledged");
            checkedRounds++;
        }
        Assert.IsTrue(checkedRounds >= 3, $"only {checkedRounds} rounds had a committed image to check");
    }
}
