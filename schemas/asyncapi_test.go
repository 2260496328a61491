package schemas

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

type asyncAPI struct {
	Channels map[string]struct {
		Address  string
		Messages map[string]struct {
			Ref string `yaml:"$ref"`
		}
	}
	Operations map[string]struct {
		Action  string
		Channel struct {
			Ref string `yaml:"$ref"`
		}
		Messages []struct {
			Ref string `yaml:"$ref"`
		}
	}
	Components struct {
		Messages map[string]struct {
			Name    string
			Tags    []struct{ Name string }
			Payload struct {
				Ref string `yaml:"$ref"`
			}
		}
	}
}

// TestTheAsyncAPIDocumentDescribesEveryType checks docs/asyncapi.yaml
// against the schemas: every event and command type has a message, named
// after it, whose payload is its schema; every reference in the document
// resolves; tms.jobs carries every job type, and its commands are tagged
// as commands (which consumers of the events skip).
func TestTheAsyncAPIDocumentDescribesEveryType(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../docs/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc asyncAPI
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for key, m := range doc.Components.Messages {
		file := path.Base(m.Payload.Ref)
		if m.Payload.Ref != "../schemas/"+m.Name+".json" {
			t.Errorf("message %s (%s): payload %s, want ../schemas/%s.json", key, m.Name, m.Payload.Ref, m.Name)
		}
		if _, err := fs.Stat(FS, file); err != nil {
			t.Errorf("message %s: %v", key, err)
		}
		command := slices.ContainsFunc(m.Tags, func(tag struct{ Name string }) bool { return tag.Name == "command" })
		if command != strings.HasPrefix(m.Name, "tms.command.") {
			t.Errorf("message %s (%s): tagged command %v", key, m.Name, command)
		}
		described[m.Name] = true
	}
	files, err := fs.Glob(FS, "tms.*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !described[strings.TrimSuffix(f, ".json")] {
			t.Errorf("schemas/%s has no message in docs/asyncapi.yaml", f)
		}
	}
	onChannel := map[string][]string{}
	for name, c := range doc.Channels {
		for key, m := range c.Messages {
			ref := strings.TrimPrefix(m.Ref, "#/components/messages/")
			cm, ok := doc.Components.Messages[ref]
			if !ok {
				t.Errorf("channel %s message %s: no %s", name, key, m.Ref)
			}
			onChannel[c.Address] = append(onChannel[c.Address], cm.Name)
		}
	}
	for _, f := range files {
		typ := strings.TrimSuffix(f, ".json")
		if (strings.HasPrefix(typ, "tms.job.") || strings.HasPrefix(typ, "tms.command.")) && !slices.Contains(onChannel["tms.jobs"], typ) {
			t.Errorf("tms.jobs does not carry %s", typ)
		}
	}
	for name, op := range doc.Operations {
		channel := strings.TrimPrefix(op.Channel.Ref, "#/channels/")
		c, ok := doc.Channels[channel]
		if !ok || op.Action != "send" {
			t.Errorf("operation %s: channel %s, action %s", name, op.Channel.Ref, op.Action)
		}
		for _, m := range op.Messages {
			key := strings.TrimPrefix(m.Ref, "#/channels/"+channel+"/messages/")
			if _, ok := c.Messages[key]; !ok {
				t.Errorf("operation %s: message %s is not on its channel", name, m.Ref)
			}
		}
	}
}
