using System.CommandLine;
using System.Globalization;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;
using Spectre.Console;

namespace CloudMirrorFs.Host.Commands;

/// <summary>
/// <c>cmfs restore --facet NAME --to DIR [--at TIME]</c>: rebuilds the tree from one remote facet alone (a new
/// machine needs only the config file). DIR is created if absent and must be empty; it receives the tree root.
/// </summary>
internal static class RestoreCommand
{
    public static Command Create(CommandContext context, Option<string?> config)
    {
        var facet = new Option<string>("--facet") { Description = "The remote facet to restore from", Required = true };
        var to = new Option<string>("--to") { Description = "The folder to restore into (created if absent, must be empty)", Required = true };
        var at = new Option<string?>("--at") { Description = "An older image: a UTC time (2026-11-23T10:00:00Z) or how long ago (90m, 2h)" };
        var command = new Command("restore", "Rebuild the tree from a remote facet alone") { facet, to, at };
        command.SetAction(async (parse, cancellationToken) =>
        {
            ResolvedVolume volume = context.Resolve(parse.GetValue(config), needMount: false);
            string name = parse.GetValue(facet)!;
            FacetOptions fo = volume.Options.Facets.FirstOrDefault(f => f.Name == name)
                ?? throw new ConfigException("--facet", $"no facet named '{name}' in {volume.Source}; facets: {string.Join(", ", volume.Options.Facets.Select(f => f.Name))}");
            DateTime? atUtc = ParseAt(parse.GetValue(at));
            string target = Path.GetFullPath(parse.GetValue(to)!, context.WorkingDirectory);
            if (fo.Kind == "directory")
            {
                throw new ConfigException("--facet", $"facet '{name}' is a directory facet: its tree is already plain files at {fo.Path}; copy it (cp -a) instead");
            }
            IObjectStore store = FacetFactory.CreateStore(fo);
            await using (store)
            {
                bool interactive = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
                RemoteRestore.Result result = interactive
                    ? await RestoreWithBarAsync(store, target, atUtc, cancellationToken)
                    : await RemoteRestore.RestoreAsync(store, target, atUtc, new LineProgress(context.Error), cancellationToken);
                await context.Out.WriteLineAsync(
                    $"restored commit {result.Commit} (queue position {result.QueueSeq}) from {store.Description} into {target}: {result.Files} files, {result.Directories} folders, {result.Symlinks} symlinks, {Units.FormatSize(result.Bytes)}");
            }
            return CmfsCli.Ok;
        });
        return command;
    }

    private static DateTime? ParseAt(string? text)
    {
        if (text is null)
        {
            return null;
        }
        if (Units.ParseDuration(text) is { } ago && !text.All(char.IsDigit))
        {
            return DateTime.UtcNow - ago;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset when))
        {
            return when.UtcDateTime;
        }
        throw new ConfigException("--at", $"'{text}' is neither a time (2026-11-23T10:00:00Z) nor a duration ago (90m, 2h)");
    }

    private static async Task<RemoteRestore.Result> RestoreWithBarAsync(IObjectStore store, string target, DateTime? atUtc, CancellationToken cancellationToken)
    {
        RemoteRestore.Result? result = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                ProgressTask task = ctx.AddTask("restore", maxValue: 1);
                var progress = new Progress<(long Done, long Total)>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                });
                result = await RemoteRestore.RestoreAsync(store, target, atUtc, progress, cancellationToken);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    /// <summary>Plain progress lines (every 10 %) when the output is not a terminal.</summary>
    private sealed class LineProgress(TextWriter writer) : IProgress<(long Done, long Total)>
    {
        private int _lastDecile = -1;

        public void Report((long Done, long Total) value)
        {
            int decile = value.Total == 0 ? 10 : (int)(value.Done * 10 / value.Total);
            if (Interlocked.Exchange(ref _lastDecile, decile) != decile)
            {
                lock (writer)
                {
                    writer.WriteLine($"restore: {decile * 10}% ({Units.FormatSize(value.Done)} of {Units.FormatSize(value.Total)})");
                }
            }
        }
    }
}
