DROP TABLE vehicles;
DROP TABLE positions;
DROP TABLE projector_offsets;
